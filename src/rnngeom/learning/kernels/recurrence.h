/* The time loops of the hand-written BPTT passes (bptt_cpu.py), for one member, in one floating-point type.
 * Included twice by recurrence.c: REAL = float (training) and double (the float64 checks against autograd).
 * Arrays are C-contiguous, time-first: step t of a [T, B, N] array starts at t * B * N.
 *
 * Every result element is computed by the same sequence of IEEE operations whatever the vector width or
 * the position of the element (the build uses -ffp-contract=off and writes each fused multiply-add
 * explicitly), so a member's bits do not depend on the batch size, the CPU's vector unit or the ensemble. */

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define F(name) CAT(name, SUFFIX)

/* out[I, J] = A Bm (more: out += A Bm, each sum continuing from out's value): out[i, j] = Σ_k A[i, k] Bm[k, j]
 * over k ascending, one fused multiply-add each, with A[i, k] at A[i * ai + k * ak] (so Aᵀ is A with the
 * strides swapped) and Bm row-major [K, J]. Two rows (the last odd one: one) by 4 VEC columns at a time are
 * accumulated in registers, written out as GCC vector variables (in arrays, or left to itself, GCC 12 kept
 * them on the stack, 2x slower, measured); columns beyond the last block take the same sums one element at
 * a time (FMA: the same fused operation), so every element gets the same bits wherever it falls. */
#define LOAD4(v, p)                                                                                        \
    memcpy(&v##0, (p), sizeof(VEC));                                                                       \
    memcpy(&v##1, (p) + W, sizeof(VEC));                                                                   \
    memcpy(&v##2, (p) + 2 * W, sizeof(VEC));                                                               \
    memcpy(&v##3, (p) + 3 * W, sizeof(VEC))
#define STORE4(p, v)                                                                                       \
    memcpy((p), &v##0, sizeof(VEC));                                                                       \
    memcpy((p) + W, &v##1, sizeof(VEC));                                                                   \
    memcpy((p) + 2 * W, &v##2, sizeof(VEC));                                                               \
    memcpy((p) + 3 * W, &v##3, sizeof(VEC))
#define FMA4(acc, s, m)                                                                                    \
    acc##0 = VFMA(s, m##0, acc##0);                                                                        \
    acc##1 = VFMA(s, m##1, acc##1);                                                                        \
    acc##2 = VFMA(s, m##2, acc##2);                                                                        \
    acc##3 = VFMA(s, m##3, acc##3)

static void F(matmul_chunk)(const REAL *restrict A, long ai, long ak, const REAL *restrict Bm,
                            REAL *restrict out, long I, long J, long K, int more)
{
    enum { W = sizeof(VEC) / sizeof(REAL), COLS = 4 * W };
    long i = 0, j0;
    for (; i + 2 <= I; i += 2) {
        const REAL *h0 = A + i * ai, *h1 = h0 + ai;
        REAL *o0 = out + i * J, *o1 = o0 + J;
        for (j0 = 0; j0 + COLS <= J; j0 += COLS) {
            VEC a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0}, m0, m1, m2, m3;
            if (more) {
                LOAD4(a, o0 + j0);
                LOAD4(b, o1 + j0);
            }
            for (long k = 0; k < K; k++) {
                LOAD4(m, Bm + k * J + j0);
                const VEC s0 = h0[k * ak] - (VEC){0}, s1 = h1[k * ak] - (VEC){0}; /* broadcasts (x − 0 = x) */
                FMA4(a, s0, m);
                FMA4(b, s1, m);
            }
            STORE4(o0 + j0, a);
            STORE4(o1 + j0, b);
        }
        for (long j = j0; j < J; j++) {
            REAL x0 = more ? o0[j] : 0, x1 = more ? o1[j] : 0;
            for (long k = 0; k < K; k++) {
                x0 = FMA(h0[k * ak], Bm[k * J + j], x0);
                x1 = FMA(h1[k * ak], Bm[k * J + j], x1);
            }
            o0[j] = x0;
            o1[j] = x1;
        }
    }
    if (i < I) { /* the last row of an odd I */
        const REAL *h0 = A + i * ai;
        REAL *o0 = out + i * J;
        for (j0 = 0; j0 + COLS <= J; j0 += COLS) {
            VEC a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, m0, m1, m2, m3;
            if (more) {
                LOAD4(a, o0 + j0);
            }
            for (long k = 0; k < K; k++) {
                LOAD4(m, Bm + k * J + j0);
                const VEC s0 = h0[k * ak] - (VEC){0};
                FMA4(a, s0, m);
            }
            STORE4(o0 + j0, a);
        }
        for (long j = j0; j < J; j++) {
            REAL x0 = more ? o0[j] : 0;
            for (long k = 0; k < K; k++)
                x0 = FMA(h0[k * ak], Bm[k * J + j], x0);
            o0[j] = x0;
        }
    }
}
#undef LOAD4
#undef STORE4
#undef FMA4

/* out = A Bm as above; long sums (weight gradients: K = T·B terms) in chunks of KC terms, so that a chunk of
 * A and Bm stays in cache across all rows i (each chunk's sums continue the last: same order, same bits). */
static void F(matmul)(const REAL *restrict A, long ai, long ak, const REAL *restrict Bm, REAL *restrict out,
                      long I, long J, long K)
{
    enum { KC = 256 };
    for (long k0 = 0; k0 == 0 || k0 < K; k0 += KC)
        F(matmul_chunk)(A + k0 * ak, ai, ak, Bm + k0 * J, out, I, J, K - k0 < KC ? K - k0 : KC, k0 > 0);
}

/* out[I, J] = Σ_rows g[row]ᵀ h[row] for g [R, I], h [R, J] (a weight gradient: Σ_t g_tᵀ h_t over time and
 * batch, rows ascending). */
void F(sum_outer)(long R, long I, long J, const REAL *restrict g, const REAL *restrict h, REAL *restrict out)
{
    F(matmul)(g, 1, I, h, out, I, J, R);
}

/* The variance of each of the N columns of x [R, N] over its R rows, averaged over the columns (the
 * activity variance bptt_cpu records): two passes, column means first, sums in double, in a fixed order. */
double F(column_variance)(long R, long N, const REAL *restrict x)
{
    enum { CB = 64 };
    double total = 0;
    for (long j0 = 0; j0 < N; j0 += CB) {
        const long n = N - j0 < CB ? N - j0 : CB;
        double mean[CB] = {0}, sq[CB] = {0};
        for (long row = 0; row < R; row++)
            for (long j = 0; j < n; j++)
                mean[j] += x[row * N + j0 + j];
        for (long j = 0; j < n; j++)
            mean[j] /= (double)R;
        for (long row = 0; row < R; row++)
            for (long j = 0; j < n; j++) {
                const double d = x[row * N + j0 + j] - mean[j];
                sq[j] += d * d;
            }
        for (long j = 0; j < n; j++)
            total += sq[j];
    }
    return total / ((double)R * N);
}

/* dst [T, B, n_dst] = src [B, T, n] time-first, columns n .. n_dst − 1 set to one (an input's bias column). */
void F(time_first)(long B, long T, long n, long n_dst, const REAL *restrict src, REAL *restrict dst)
{
    for (long t = 0; t < T; t++)
        for (long b = 0; b < B; b++) {
            const REAL *from = src + (b * T + t) * n;
            REAL *to = dst + (t * B + b) * n_dst;
            for (long j = 0; j < n; j++)
                to[j] = from[j];
            for (long j = n; j < n_dst; j++)
                to[j] = 1;
        }
}

/* Masked MSE and TCR of the activity r [T, B, N] and their gradient (the formulas of
 * bptt_cpu._loss_and_activity_grad, rnngeom.losses and rnngeom.tcr), given the readout's products
 * ry = r Boᵀ [T, B, O] (a BLAS product: a dot product per output here ran 2x slower): y = ry + bo,
 * e = y − y*, task = Σ m e² / Σ m, dy = 2 m ⊙ e / Σ m, tcr = mean (r_{t+1} − r_t)², dr = dy Bo + λ ∂tcr/∂r.
 * target and mask are read in the minibatch's own layout [B, T, O] (no time-first copies: ~50 µs each per
 * member, measured), element (t, b, o) taking its place in the time-first order of the sums.
 * Writes dy [T, B, O] and dr [T, B, N]; sums[0] = task, sums[1] = tcr (sums in double, in a fixed order). */
void F(loss_grad)(long T, long B, long N, long O, const REAL *restrict r, const REAL *restrict ry,
                  const REAL *restrict Bo, const REAL *restrict bo, const REAL *restrict target,
                  const REAL *restrict mask, double lam, REAL *restrict dy, REAL *restrict dr,
                  double *restrict sums)
{
    const long rows = T * B;
    /* the sums in 8 chains (element i in chain i mod 8, added up in chain order): one chain was latency-bound */
    double scored[8] = {0}, err2[8] = {0}, n_scored = 0, task = 0;
    for (long t = 0; t < T; t++)
        for (long b = 0; b < B; b++)
            for (long o = 0; o < O; o++)
                scored[((t * B + b) * O + o) & 7] += mask[(b * T + t) * O + o];
    for (int l = 0; l < 8; l++)
        n_scored += scored[l];
    const REAL scale = (REAL)(2.0 / (n_scored > 1 ? n_scored : 1));
    for (long t = 0; t < T; t++)
        for (long b = 0; b < B; b++)
            for (long o = 0; o < O; o++) {
                const long i = (t * B + b) * O + o, src = (b * T + t) * O + o;
                const REAL e = (ry[i] + bo[o]) - target[src];
                const REAL d = mask[src] * e;
                err2[i & 7] += (double)d * (double)e;
                dy[i] = d * scale;
            }
    for (int l = 0; l < 8; l++)
        task += err2[l];
    F(matmul)(dy, O, 1, Bo, dr, rows, N, O); /* dr = dy Bo, the readout's part */
    sums[0] = task / (n_scored > 1 ? n_scored : 1);
    sums[1] = 0;
    if (T < 2)
        return;
    const long S = B * N;
    const REAL c = (REAL)(2.0 * lam / ((double)(T - 1) * S));
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long t = 1; t < T; t++) {
        const REAL *now = r + t * S, *before = now - S;
        REAL *dr_now = dr + t * S, *dr_before = dr_now - S;
        long i0 = 0;
        for (; i0 + 8 <= S; i0 += 8)
            for (long l = 0; l < 8; l++) {
                const REAL d = now[i0 + l] - before[i0 + l];
                lane[l] += (double)d * (double)d;
                const REAL cd = d * c;
                dr_now[i0 + l] += cd;
                dr_before[i0 + l] -= cd;
            }
        for (long l = 0; i0 + l < S; l++) {
            const REAL d = now[i0 + l] - before[i0 + l];
            lane[l] += (double)d * (double)d;
            const REAL cd = d * c;
            dr_now[i0 + l] += cd;
            dr_before[i0 + l] -= cd;
        }
    }
    double tcr = 0;
    for (int l = 0; l < 8; l++)
        tcr += lane[l];
    sums[1] = tcr / ((double)(T - 1) * S);
}

/* Leaky forward: x_t = drive_t + r_t (α Wᵀ) [+ (1 − α) x_{t−1}],  r_{t+1} = tanh(x_t),  r_0 = 0.
 * xs [T, B, N]: the drive α (W_in s_t + b) in, x_t out; rs [T + 1, B, N]: r out; Wt_a = α Wᵀ [N, N]. */
void F(leaky_forward)(long T, long B, long N, REAL *restrict xs, REAL *restrict rs, const REAL *restrict Wt_a,
                      REAL leak, int leaky, REAL *restrict buf)
{
    const long S = B * N;
    for (long i = 0; i < S; i++) {
        rs[i] = 0;
        rs[S + i] = TANH(xs[i]);
    }
    for (long t = 1; t < T; t++) {
        REAL *x = xs + t * S, *r_next = rs + (t + 1) * S;
        const REAL *x_prev = xs + (t - 1) * S;
        F(matmul)(rs + t * S, N, 1, Wt_a, buf, B, N, N);
        if (leaky)
            for (long i = 0; i < S; i++)
                x[i] = (x[i] + buf[i]) + x_prev[i] * leak;
        else
            for (long i = 0; i < S; i++)
                x[i] = x[i] + buf[i];
        for (long i = 0; i < S; i++)
            r_next[i] = TANH(x[i]);
    }
}

/* Leaky backward: g_t = (dL/dr_t + g_{t+1} (α W)) ⊙ (1 − r_t²) [+ (1 − α) g_{t+1}],  g_T = 0.
 * g [T, B, N]: dL/dr in, g^x out; r [T, B, N]: r_t (= rs[1:]); W_a = α W [N, N]. */
void F(leaky_backward)(long T, long B, long N, REAL *restrict g, const REAL *restrict r,
                       const REAL *restrict W_a, REAL leak, int leaky, REAL *restrict buf)
{
    const long S = B * N;
    REAL *g_last = g + (T - 1) * S;
    const REAL *r_last = r + (T - 1) * S;
    for (long i = 0; i < S; i++)
        g_last[i] = g_last[i] * (1 - r_last[i] * r_last[i]);
    for (long t = T - 2; t >= 0; t--) {
        REAL *gt = g + t * S;
        const REAL *g_next = gt + S, *rt = r + t * S;
        F(matmul)(g_next, N, 1, W_a, buf, B, N, N);
        if (leaky)
            for (long i = 0; i < S; i++)
                gt[i] = (gt[i] + buf[i]) * (1 - rt[i] * rt[i]) + g_next[i] * leak;
        else
            for (long i = 0; i < S; i++)
                gt[i] = (gt[i] + buf[i]) * (1 - rt[i] * rt[i]);
    }
}

/* PLRNN forward: z_t = input_t + relu(z_{t−1}) W̃ᵀ + a ⊙ z_{t−1},  relu_{t+1} = max(z_t, 0),  z_{−1} = 0.
 * zs [T, B, N]: C s_t + h in, z_t out; relu [T + 1, B, N] out; Wt = W̃ᵀ [N, N]; a [N]. */
void F(plrnn_forward)(long T, long B, long N, REAL *restrict zs, REAL *restrict relu, const REAL *restrict Wt,
                      const REAL *restrict a, REAL *restrict buf)
{
    const long S = B * N;
    for (long i = 0; i < S; i++) {
        relu[i] = 0;
        relu[S + i] = zs[i] > 0 ? zs[i] : 0;
    }
    for (long t = 1; t < T; t++) {
        REAL *z = zs + t * S, *relu_next = relu + (t + 1) * S;
        const REAL *z_prev = z - S;
        F(matmul)(relu + t * S, N, 1, Wt, buf, B, N, N);
        for (long b = 0; b < B; b++)
            for (long j = 0; j < N; j++) {
                const long i = b * N + j;
                z[i] = (z[i] + buf[i]) + z_prev[i] * a[j];
                relu_next[i] = z[i] > 0 ? z[i] : 0;
            }
    }
}

/* PLRNN backward: g_t = dL/dr_t + 1[z_t > 0] ⊙ (g_{t+1} W̃) + a ⊙ g_{t+1},  g_T = 0.
 * g [T, B, N]: dL/dr in, g out; zs [T, B, N]: z_t; Wm = W̃ [N, N]; a [N]. */
void F(plrnn_backward)(long T, long B, long N, REAL *restrict g, const REAL *restrict zs,
                       const REAL *restrict Wm, const REAL *restrict a, REAL *restrict buf)
{
    const long S = B * N;
    for (long t = T - 2; t >= 0; t--) {
        REAL *gt = g + t * S;
        const REAL *g_next = gt + S, *z = zs + t * S;
        F(matmul)(g_next, N, 1, Wm, buf, B, N, N);
        for (long b = 0; b < B; b++)
            for (long j = 0; j < N; j++) {
                const long i = b * N + j;
                gt[i] = (gt[i] + (z[i] > 0 ? buf[i] : 0)) + g_next[i] * a[j];
            }
    }
}

/* LSTM forward (models/lstm.py): gates [T, B, 4N] hold W_ih s_t + b in (rows i, f, g, o of each step's 4N),
 * their activations σ(i), σ(f), tanh(g), σ(o) out; pre_t += h_{t−1} W_hhᵀ first (Wt = W_hhᵀ [N, 4N]).
 * c_t = f ⊙ c_{t−1} + i ⊙ g, tc_t = tanh(c_t), h_t = o ⊙ tc_t, h_{−1} = c_{−1} = 0. h, c, tc: [T, B, N] out. */
void F(lstm_forward)(long T, long B, long N, REAL *restrict gates, REAL *restrict h, REAL *restrict c,
                     REAL *restrict tc, const REAL *restrict Wt, REAL *restrict buf)
{
    const long S = B * N, G = 4 * N;
    for (long t = 0; t < T; t++) {
        REAL *gt = gates + t * B * G;
        if (t > 0) {
            F(matmul)(h + (t - 1) * S, N, 1, Wt, buf, B, G, N);
            for (long i = 0; i < B * G; i++)
                gt[i] = gt[i] + buf[i];
        }
        for (long b = 0; b < B; b++) {
            REAL *row = gt + b * G;
            for (long j = 0; j < N; j++) {
                row[j] = SIGMOID(row[j]);
                row[N + j] = SIGMOID(row[N + j]);
                row[2 * N + j] = TANH(row[2 * N + j]);
                row[3 * N + j] = SIGMOID(row[3 * N + j]);
            }
            REAL *cb = c + t * S + b * N, *tcb = tc + t * S + b * N, *hb = h + t * S + b * N;
            if (t > 0) { /* two loops, not one with a condition inside: that one did not vectorise */
                const REAL *c_prev = cb - S;
                for (long j = 0; j < N; j++)
                    cb[j] = row[N + j] * c_prev[j] + row[j] * row[2 * N + j];
            } else
                for (long j = 0; j < N; j++)
                    cb[j] = 0 + row[j] * row[2 * N + j];
            for (long j = 0; j < N; j++) {
                tcb[j] = TANH(cb[j]);
                hb[j] = row[3 * N + j] * tcb[j];
            }
        }
    }
}

/* LSTM backward: dh [T, B, N] holds dL/dh_t (direct) in; dgates [T, B, 4N] out: dL/d(pre-activations).
 * dh_t += dgates_{t+1} W_hh (W [4N, N]); dc_t = dh_t ⊙ o ⊙ (1 − tc²) + dc_{t+1} ⊙ f_{t+1};
 * d(i, f, g, o) = (dc g, dc c_{t−1}, dc i, dh tc), times σ' = σ(1 − σ) or tanh' = 1 − g².
 * buf [B, N] and dc [B, N]: work space. */
void F(lstm_backward)(long T, long B, long N, REAL *restrict dh, const REAL *restrict gates,
                      const REAL *restrict c, const REAL *restrict tc, const REAL *restrict W,
                      REAL *restrict dgates, REAL *restrict buf, REAL *restrict dc)
{
    const long S = B * N, G = 4 * N;
    for (long t = T - 1; t >= 0; t--) {
        REAL *dht = dh + t * S;
        if (t < T - 1) {
            F(matmul)(dgates + (t + 1) * B * G, G, 1, W, buf, B, N, G);
            for (long i = 0; i < S; i++)
                dht[i] = dht[i] + buf[i];
        }
        for (long b = 0; b < B; b++) {
            const REAL *row = gates + t * B * G + b * G;
            const REAL *tcb = tc + t * S + b * N, *dhb = dht + b * N;
            REAL *dcb = dc + b * N, *drow = dgates + t * B * G + b * G;
            /* dc_t, carried back through f_{t+1} (nothing to carry at the last step) */
            if (t < T - 1) {
                const REAL *f_next = row + B * G + N;
                for (long j = 0; j < N; j++)
                    dcb[j] = dhb[j] * row[3 * N + j] * (1 - tcb[j] * tcb[j]) + dcb[j] * f_next[j];
            } else
                for (long j = 0; j < N; j++)
                    dcb[j] = dhb[j] * row[3 * N + j] * (1 - tcb[j] * tcb[j]) + 0;
            if (t > 0) {
                const REAL *c_prev = c + (t - 1) * S + b * N;
                for (long j = 0; j < N; j++)
                    drow[N + j] = dcb[j] * c_prev[j] * (row[N + j] * (1 - row[N + j]));
            } else
                for (long j = 0; j < N; j++)
                    drow[N + j] = 0;
            for (long j = 0; j < N; j++) {
                const REAL i_ = row[j], g_ = row[2 * N + j], o_ = row[3 * N + j];
                drow[j] = dcb[j] * g_ * (i_ * (1 - i_));
                drow[2 * N + j] = dcb[j] * i_ * (1 - g_ * g_);
                drow[3 * N + j] = dhb[j] * tcb[j] * (o_ * (1 - o_));
            }
        }
    }
}

#undef F
#undef CAT
#undef CAT2
