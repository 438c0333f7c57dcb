/* Per-precision template of the blocked-SGD kernel (see simulate/_ckernel.py): REAL, SFX and EXP
   are replaced by the element type, a name suffix and the exp function before compiling. */
typedef struct {
  int R, T, m, C, loss, train_W, train_b, train_a;
  const REAL *P; long p_r, p_t;
  const REAL *G; long g_r;
  REAL *b; REAL *a;
  REAL *U; long u_r, u_t;
  const REAL *tgt; long tg_r;
  const REAL *lr;
  REAL wd_W, wd_a, lr_a_mult;
  REAL *F; REAL *gam;
  int r0, r1, i0, i1, team_k, team_n;
  REAL *fpart; /* (2, team_n, C) partial outputs, double buffered */
  spin_barrier_t *bar;
} args_SFX;

/* sum_i a_i relu(z_i) with 8 independent partial sums (vectorizes without -ffast-math) */
static REAL dot_relu_SFX(int n, const REAL *restrict a, const REAL *restrict z) {
  REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += a[i + l] * (z[i + l] > 0 ? z[i + l] : 0);
  for (; i < n; i++) acc[0] += a[i] * (z[i] > 0 ? z[i] : 0);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* Second half of a step on n coordinates: u = -eta (a^T g) 1[z > 0] (old a), Ut = u / Gam_{t+1}
   (if Ut), b += u (if b), a = da a - eta_a g relu(z)^T (if train_a). a has row stride m. */
static inline __attribute__((always_inline)) void update_SFX(
    const int C, const int n, const long m, const REAL *restrict z, REAL *restrict a, REAL *restrict b,
    REAL *restrict Ut, const REAL *g, const REAL eta, const REAL eta_a, const REAL inv_next, const REAL da,
    const int train_a) {
  REAL gg[MAXC], eg[MAXC];
  for (int c = 0; c < C; c++) { gg[c] = g[c]; eg[c] = eta_a * g[c]; }
  if (Ut && b && train_a) {
#pragma omp simd
    for (int i = 0; i < n; i++) {
      REAL dz = 0;
      for (int c = 0; c < C; c++) dz += a[c * m + i] * gg[c];
      const REAL zi = z[i], h = zi > 0 ? zi : 0, u = (zi > 0 ? -eta : (REAL)0) * dz;
      Ut[i] = u * inv_next;
      b[i] += u;
      for (int c = 0; c < C; c++) a[c * m + i] = a[c * m + i] * da - eg[c] * h;
    }
    return;
  }
  if (Ut || b) {
#pragma omp simd
    for (int i = 0; i < n; i++) {
      REAL dz = 0;
      for (int c = 0; c < C; c++) dz += a[c * m + i] * gg[c];
      const REAL u = (z[i] > 0 ? -eta : (REAL)0) * dz;
      if (Ut) Ut[i] = u * inv_next;
      if (b) b[i] += u;
    }
  }
  if (train_a) {
    for (int c = 0; c < C; c++) {
      REAL *restrict ac = a + c * m;
      const REAL e = eg[c];
#pragma omp simd
      for (int i = 0; i < n; i++) ac[i] = ac[i] * da - e * (z[i] > 0 ? z[i] : 0);
    }
  }
}

/* Z[j][i] = P[t0 + j][i] + sum_{s < t0} G[s, t0 + j] U[s][i] for j < ns, i < w (pointers already at
   the thread's first coordinate): the contribution of the earlier sub-blocks to the next ns steps,
   reading each earlier row of U once per sub-block instead of once per step. */
static void presum_SFX(const int ns, const int t0, const int T, const int w, const REAL *P, const long p_t,
                       const REAL *G, const REAL *U, const long u_t, REAL *restrict Z) {
  for (int c0 = 0; c0 < w; c0 += CHUNK2) {
    const int n = (c0 + CHUNK2 < w ? c0 + CHUNK2 : w) - c0;
    for (int j = 0; j < ns; j++) {
      REAL *restrict zj = Z + (long)j * w + c0;
      const REAL *restrict pj = P + (t0 + j) * p_t + c0;
#pragma omp simd
      for (int i = 0; i < n; i++) zj[i] = pj[i];
    }
    int s = 0;
    for (; s + 4 <= t0; s += 4) {
      const REAL *restrict U0 = U + s * u_t + c0, *restrict U1 = U0 + u_t;
      const REAL *restrict U2 = U1 + u_t, *restrict U3 = U2 + u_t;
      for (int j = 0; j < ns; j++) {
        const REAL g0 = G[(long)s * T + t0 + j], g1 = G[(long)(s + 1) * T + t0 + j];
        const REAL g2 = G[(long)(s + 2) * T + t0 + j], g3 = G[(long)(s + 3) * T + t0 + j];
        REAL *restrict zj = Z + (long)j * w + c0;
#pragma omp simd
        for (int i = 0; i < n; i++) zj[i] += (g0 * U0[i] + g1 * U1[i]) + (g2 * U2[i] + g3 * U3[i]);
      }
    }
    for (; s < t0; s++) {
      const REAL *restrict U0 = U + s * u_t + c0;
      for (int j = 0; j < ns; j++) {
        const REAL g0 = G[(long)s * T + t0 + j];
        REAL *restrict zj = Z + (long)j * w + c0;
#pragma omp simd
        for (int i = 0; i < n; i++) zj[i] += g0 * U0[i];
      }
    }
  }
}

/* The T steps of run r on the coordinates [i0, i1) owned by this thread; z (w) and Z (SUB x w):
   scratch of width w = i1 - i0. */
static void run_SFX(const args_SFX *A, int r, REAL *restrict z, REAL *restrict Z, int *sense) {
  const int T = A->T, m = A->m, C = A->C, i0 = A->i0, i1 = A->i1, w = i1 - i0;
  const REAL *P = A->P + r * A->p_r;
  const REAL *G = A->G + r * A->g_r;
  REAL *restrict b = A->b + (long)r * m;
  REAL *restrict a = A->a + (long)r * C * m;
  REAL *U = A->U + r * A->u_r;
  const REAL *tg = A->tgt + r * A->tg_r;
  const REAL *lr = A->lr + (long)r * T;
  REAL *F = A->F + (long)r * T * C;
  REAL f[MAXC], g[MAXC];
  REAL gam = 1;
  int t0 = 0;
  for (int t = 0; t < T; t++) {
    const REAL eta = lr[t];
    if (A->train_W && t % SUB == 0) {
      t0 = t;
      presum_SFX(T - t0 < SUB ? T - t0 : SUB, t0, T, w, P + i0, A->p_t, G, U + i0, A->u_t, Z);
    }
    const REAL *restrict Pt = A->train_W ? Z + (long)(t - t0) * w : P + t * A->p_t + i0;  /* from i0 */
    for (int c = 0; c < C; c++) f[c] = 0;
    for (int j0 = i0; j0 < i1; j0 += CHUNK) {
      const int j1 = j0 + CHUNK < i1 ? j0 + CHUNK : i1;
      REAL *restrict zz = z + (j0 - i0);
      const int n = j1 - j0;
      #pragma omp simd
      for (int i = 0; i < n; i++) zz[i] = Pt[j0 - i0 + i];
      if (A->train_W) {
        int s = t0;
        for (; s + 4 <= t; s += 4) {
          const REAL c0 = G[(long)s * T + t], c1 = G[(long)(s + 1) * T + t];
          const REAL c2 = G[(long)(s + 2) * T + t], c3 = G[(long)(s + 3) * T + t];
          const REAL *restrict U0 = U + s * A->u_t + j0, *restrict U1 = U0 + A->u_t;
          const REAL *restrict U2 = U1 + A->u_t, *restrict U3 = U2 + A->u_t;
          #pragma omp simd
          for (int i = 0; i < n; i++) zz[i] += (c0 * U0[i] + c1 * U1[i]) + (c2 * U2[i] + c3 * U3[i]);
        }
        for (; s < t; s++) {
          const REAL c0 = G[(long)s * T + t];
          const REAL *restrict U0 = U + s * A->u_t + j0;
          #pragma omp simd
          for (int i = 0; i < n; i++) zz[i] += c0 * U0[i];
        }
      }
      const REAL *restrict bb = b + j0;
      #pragma omp simd
      for (int i = 0; i < n; i++) zz[i] = gam * zz[i] + bb[i];
      if (A->loss == 2) continue;  /* alignment: no output layer in the loss */
      for (int c = 0; c < C; c++) {
        const REAL *restrict ac = a + (long)c * m + j0;
        f[c] += dot_relu_SFX(n, ac, zz);
      }
    }
    if (A->loss == 2) {
      /* hidden-layer alignment 1/2 ||relu(z) - t||^2 (Curriculum Extraction), coordinate by coordinate:
         u_i = -eta (relu(z_i) - t_i) 1[z_i > 0]; no output, no coupling across coordinates */
      const REAL *restrict ti = tg + (long)t * m + i0;
      REAL *restrict Ut = A->train_W ? U + t * A->u_t + i0 : 0;
      REAL *restrict bi = A->train_b ? b + i0 : 0;
      const int n = i1 - i0;
      #pragma omp simd
      for (int i = 0; i < n; i++) {
        const REAL zi = z[i], u = zi > 0 ? -eta * (zi - ti[i]) : (REAL)0;
        if (Ut) Ut[i] = u;
        if (bi) bi[i] += u;
      }
      if (A->team_k == 0) for (int c = 0; c < C; c++) F[t * C + c] = 0;
      continue;
    }
    if (A->team_n > 1) {
      REAL *fp = A->fpart + (long)(t & 1) * A->team_n * C;
      for (int c = 0; c < C; c++) fp[A->team_k * C + c] = f[c];
      spin_wait(A->bar, sense);
      for (int c = 0; c < C; c++) {
        REAL acc = 0;
        for (int k = 0; k < A->team_n; k++) acc += fp[k * C + c];
        f[c] = acc;
      }
    }
    if (A->team_k == 0) for (int c = 0; c < C; c++) F[t * C + c] = f[c];
    if (A->loss == 0) {
      const REAL y = tg[t];
      g[0] = (y * f[0] < 1) ? -y : 0;
    } else {
      REAL mx = f[0], tot = 0;
      for (int c = 1; c < C; c++) mx = f[c] > mx ? f[c] : mx;
      for (int c = 0; c < C; c++) { g[c] = EXP(f[c] - mx); tot += g[c]; }
      for (int c = 0; c < C; c++) g[c] = g[c] / tot - tg[(long)t * C + c];
    }
    const REAL gam_next = gam * (1 - 2 * eta * A->wd_W);
    const REAL inv_next = 1 / gam_next;
    const REAL eta_a = eta * A->lr_a_mult;  /* exactly eta when lr_a_mult = 1 */
    const REAL da = 1 - 2 * eta_a * A->wd_a;
    const int n = i1 - i0;
    REAL *Ut = A->train_W ? U + t * A->u_t + i0 : 0;
    REAL *bb = A->train_b ? b + i0 : 0;
    REAL *ai = a + i0;
    /* u = -eta (a^T g) 1[z > 0] with the old a; then U[t], b and a updates, in one pass */
    if (C == 1) update_SFX(1, n, m, z, ai, bb, Ut, g, eta, eta_a, inv_next, da, A->train_a);
    else if (C == 2) update_SFX(2, n, m, z, ai, bb, Ut, g, eta, eta_a, inv_next, da, A->train_a);
    else update_SFX(C, n, m, z, ai, bb, Ut, g, eta, eta_a, inv_next, da, A->train_a);
    gam = gam_next;
  }
  if (A->train_W && gam != 1) {
    for (int t = 0; t < T; t++) {
      REAL *restrict Ut = U + t * A->u_t + i0;
      #pragma omp simd
      for (int i = 0; i < i1 - i0; i++) Ut[i] *= gam;
    }
  }
  if (A->team_k == 0) A->gam[r] = gam;
}

int block_SFX(int R, int T, int m, int C, int loss, int train_W, int train_b, int train_a,
              const REAL *P, long p_r, long p_t, const REAL *G, long g_r, REAL *b, REAL *a,
              REAL *U, long u_r, long u_t, const REAL *tgt, long tg_r, const REAL *lr,
              double wd_W, double wd_a, REAL *F, REAL *gam, int nthreads, int split_width, double lr_a_mult) {
  if (C > MAXC || C < 1 || m < 1 || T < 1 || R < 1) return 2;
  if (nthreads < 1) nthreads = 1;
  if (nthreads > MAXTHREADS) nthreads = MAXTHREADS;
  if (split_width) { if (nthreads > m / 16) nthreads = m / 16 > 0 ? m / 16 : 1; }
  else if (nthreads > R) nthreads = R;
  REAL fpart[2 * MAXTHREADS * MAXC];
  spin_barrier_t bar = {0, 0, 0};
  REAL *scratch = (REAL *)malloc(sizeof(REAL) * (1 + SUB) * (size_t)m * (split_width ? 1 : nthreads));
  if (!scratch) return 1;
  /* threads come from the OpenMP runtime torch already uses (no second, competing thread pool) */
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
#endif
  {
#ifdef _OPENMP
    const int k = omp_get_thread_num(), n = omp_get_num_threads();
#else
    const int k = 0, n = 1;
#endif
    args_SFX x = {R, T, m, C, loss, train_W, train_b, train_a, P, p_r, p_t, G, g_r, b, a, U, u_r, u_t,
                  tgt, tg_r, lr, (REAL)wd_W, (REAL)wd_a, (REAL)lr_a_mult, F, gam, 0, R, 0, m, 0, 1, fpart, &bar};
    int sense = 0;
    REAL *z;
    if (split_width) {  /* every thread: all runs, a 16-aligned slice of the width; a barrier a step */
      x.i0 = (int)(((long)m * k / n) / 16 * 16);
      x.i1 = k + 1 == n ? m : (int)(((long)m * (k + 1) / n) / 16 * 16);
      x.team_k = k; x.team_n = n;
      if (k == 0) __atomic_store_n(&bar.n, n, __ATOMIC_RELAXED);
#ifdef _OPENMP
#pragma omp barrier
#endif
      z = scratch + (1 + SUB) * (long)x.i0;
    } else {            /* threads split the runs */
      x.r0 = (int)((long)R * k / n); x.r1 = (int)((long)R * (k + 1) / n);
      z = scratch + (1 + SUB) * (long)m * k;
    }
    const int w = x.i1 - x.i0;
    for (int r = x.r0; r < x.r1; r++) run_SFX(&x, r, z, z + w, &sense);
  }
  free(scratch);
  return 0;
}
