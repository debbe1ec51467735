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
 * strides swapped) and Bm row-major [K, J]. Two rows by 4 VEC columns at a time are accumulated in registers
 * (written as GCC vector types: left to itself, GCC 12 spilled the accumulators to the stack, 2x slower,
 * measured); the edges take the same sums one element at a time (FMA: the same fused operation, so the same
 * bits wherever an element falls). */
static void F(matmul_chunk)(const REAL *restrict A, long ai, long ak, const REAL *restrict Bm,
                            REAL *restrict out, long I, long J, long K, int more)
{
    enum { W = sizeof(VEC) / sizeof(REAL), COLS = 4 * W };
    long i = 0;
    for (; i + 2 <= I; i += 2) {
        const REAL *h0 = A + i * ai, *h1 = h0 + ai;
        REAL *o0 = out + i * J, *o1 = o0 + J;
        long j0 = 0;
        for (; j0 + COLS <= J; j0 += COLS) {
            VEC a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
            if (more) {
                memcpy(&a00, o0 + j0, sizeof a00);
                memcpy(&a01, o0 + j0 + W, sizeof a01);
                memcpy(&a02, o0 + j0 + 2 * W, sizeof a02);
                memcpy(&a03, o0 + j0 + 3 * W, sizeof a03);
                memcpy(&a10, o1 + j0, sizeof a10);
                memcpy(&a11, o1 + j0 + W, sizeof a11);
                memcpy(&a12, o1 + j0 + 2 * W, sizeof a12);
                memcpy(&a13, o1 + j0 + 3 * W, sizeof a13);
            }
            for (long k = 0; k < K; k++) {
                const REAL *m = Bm + k * J + j0;
                VEC m0, m1, m2, m3;
                memcpy(&m0, m, sizeof m0);
                memcpy(&m1, m + W, sizeof m1);
                memcpy(&m2, m + 2 * W, sizeof m2);
                memcpy(&m3, m + 3 * W, sizeof m3);
                const VEC s0 = h0[k * ak] - (VEC){0}, s1 = h1[k * ak] - (VEC){0}; /* broadcasts (x − 0 = x) */
                a00 = VFMA(s0, m0, a00);
                a01 = VFMA(s0, m1, a01);
                a02 = VFMA(s0, m2, a02);
                a03 = VFMA(s0, m3, a03);
                a10 = VFMA(s1, m0, a10);
                a11 = VFMA(s1, m1, a11);
                a12 = VFMA(s1, m2, a12);
                a13 = VFMA(s1, m3, a13);
            }
            memcpy(o0 + j0, &a00, sizeof a00);
            memcpy(o0 + j0 + W, &a01, sizeof a01);
            memcpy(o0 + j0 + 2 * W, &a02, sizeof a02);
            memcpy(o0 + j0 + 3 * W, &a03, sizeof a03);
            memcpy(o1 + j0, &a10, sizeof a10);
            memcpy(o1 + j0 + W, &a11, sizeof a11);
            memcpy(o1 + j0 + 2 * W, &a12, sizeof a12);
            memcpy(o1 + j0 + 3 * W, &a13, sizeof a13);
        }
        for (long j = j0; j < J; j++) {
            REAL a0 = more ? o0[j] : 0, a1 = more ? o1[j] : 0;
            for (long k = 0; k < K; k++) {
                a0 = FMA(h0[k * ak], Bm[k * J + j], a0);
                a1 = FMA(h1[k * ak], Bm[k * J + j], a1);
            }
            o0[j] = a0;
            o1[j] = a1;
        }
    }
    for (; i < I; i++)
        for (long j = 0; j < J; j++) {
            REAL a = more ? out[i * J + j] : 0;
            for (long k = 0; k < K; k++)
                a = FMA(A[i * ai + k * ak], Bm[k * J + j], a);
            out[i * J + j] = a;
        }
}

/* out = A Bm as above; long sums (weight gradients: K = T·B terms) in chunks of KC terms, so that a chunk of
 * A and Bm stays in cache across all rows i (each chunk's sums continue the last: same order, same bits). */
static void F(matmul)(const REAL *restrict A, long ai, long ak, const REAL *restrict Bm, REAL *restrict out,
                      long I, long J, long K)
{
    enum { KC = 256 };
    for (long k0 = 0; k0 == 0 || k0 < K; k0 += KC)
        F(matmul_chunk)(A + k0 * ak, ai, ak, Bm + k0 * J, out, I, J, K - k0 < KC ? K - k0 : KC, k0 > 0);
}

/* out[N, N] = Σ_rows g[row]ᵀ h[row] for g, h [R, N] (a weight gradient: Σ_t g_tᵀ h_t over time and batch). */
void F(outer_sum)(long R, long N, const REAL *restrict g, const REAL *restrict h, REAL *restrict out)
{
    F(matmul)(g, 1, N, h, out, N, N, R);
}

/* Masked MSE and TCR of the activity r [T, B, N] and their gradient (the formulas of
 * bptt_cpu._loss_and_activity_grad, rnngeom.losses and rnngeom.tcr), given the readout's products
 * ry = r Boᵀ [T, B, O] (a BLAS product: a dot product per output here ran 2x slower): y = ry + bo,
 * e = y − y*, task = Σ m e² / Σ m, dy = 2 m ⊙ e / Σ m, tcr = mean (r_{t+1} − r_t)², dr = dy Bo + λ ∂tcr/∂r.
 * Writes dy [T, B, O] and dr [T, B, N]; sums[0] = task, sums[1] = tcr (sums in double, in a fixed order). */
void F(loss_grad)(long T, long B, long N, long O, const REAL *restrict r, const REAL *restrict ry,
                  const REAL *restrict Bo, const REAL *restrict bo, const REAL *restrict target,
                  const REAL *restrict mask, double lam, REAL *restrict dy, REAL *restrict dr,
                  double *restrict sums)
{
    const long rows = T * B;
    double n_scored = 0, task = 0;
    for (long i = 0; i < rows * O; i++)
        n_scored += mask[i];
    const REAL scale = (REAL)(2.0 / (n_scored > 1 ? n_scored : 1));
    for (long row = 0; row < rows; row++)
        for (long o = 0; o < O; o++) {
            const long i = row * O + o;
            const REAL e = (ry[i] + bo[o]) - target[i];
            const REAL d = mask[i] * e;
            task += (double)d * (double)e;
            dy[i] = d * scale;
        }
    for (long i = 0; i < rows; i++) {
        const REAL *dyi = dy + i * O;
        REAL *dri = dr + i * N;
        for (long j = 0; j < N; j++)
            dri[j] = 0;
        for (long o = 0; o < O; o++)
            for (long j = 0; j < N; j++)
                dri[j] = FMA(dyi[o], Bo[o * N + j], dri[j]);
    }
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

#undef F
#undef CAT
#undef CAT2
