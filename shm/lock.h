/*
 * lock.h - robust process-shared mutexes for records in the shared segment.
 *
 * A lock word lives in shared memory; every process that maps the segment may take it.
 * When the holder dies inside its critical section, the next locker gets EOWNERDEAD from
 * the kernel: shm_lock() then runs the table's repair function while holding the lock,
 * marks the mutex consistent and returns normally. Critical sections make no system
 * calls, log nothing and allocate nothing.
 */
#ifndef WSD_SHM_LOCK_H
#define WSD_SHM_LOCK_H

#include <pthread.h>
#include <stdint.h>

struct shm_mutex {
    pthread_mutex_t m;
    uint32_t repairs; /* times a dead owner's section was repaired (for stats) */
};

/* Repairs the data protected by a lock whose owner died; returns 0 or WSD_EBROKEN. */
typedef int (*shm_repair_fn)(void *ctx);

/* Initialises a process-shared robust mutex in place. Returns 0 or WSD_EIO. */
int shm_mutex_init(struct shm_mutex *m);

/*
 * Locks m. If the previous owner died holding it, calls repair(ctx) (when not NULL) with
 * the lock held and marks the mutex consistent. Returns 0 when the lock is held;
 * WSD_EBROKEN when repair failed or the mutex is unrecoverable (the lock is not held).
 */
int shm_lock(struct shm_mutex *m, shm_repair_fn repair, void *ctx);

void shm_unlock(struct shm_mutex *m);

#endif
