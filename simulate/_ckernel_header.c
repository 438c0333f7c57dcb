/* Shared declarations of the blocked-SGD kernel (see simulate/_ckernel.py). */
#include <math.h>
#include <stdlib.h>
#include <sched.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define CHUNK 512
#define CHUNK2 256
#ifndef SUB
#define SUB 8
#endif
#define MAXTHREADS 64

/* Sense-reversing spin barrier for the per-step sync of the width-split mode. It never sleeps:
   a futex sleep can take a whole scheduler tick to wake on a virtual machine (measured: 4 ms a
   step with OpenMP's own barrier at width 50000); it yields the CPU after long spins instead. */
typedef struct { int arrived, sense, n; } spin_barrier_t;
static void spin_wait(spin_barrier_t *b, int *local) {
  *local = !*local;
  if (__atomic_add_fetch(&b->arrived, 1, __ATOMIC_ACQ_REL) == b->n) {
    __atomic_store_n(&b->arrived, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&b->sense, *local, __ATOMIC_RELEASE);
  } else {
    long spins = 0;
    while (__atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != *local)
      if (++spins > 20000) { sched_yield(); spins = 0; }
  }
}
