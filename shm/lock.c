/* lock.c - robust process-shared mutexes with repair on owner death. */
#include "shm/lock.h"

#include <errno.h>

#include "core/wsd.h"

int shm_mutex_init(struct shm_mutex *m)
{
    pthread_mutexattr_t attr;
    int rc = WSD_EIO;

    if (pthread_mutexattr_init(&attr) != 0)
        return WSD_EIO;
    if (pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0)
        goto out_destroy_attr;
    if (pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0)
        goto out_destroy_attr;
    if (pthread_mutex_init(&m->m, &attr) != 0)
        goto out_destroy_attr;
    m->repairs = 0;
    rc = 0;
out_destroy_attr:
    pthread_mutexattr_destroy(&attr);
    return rc;
}

/*
 * The previous owner died inside its critical section and we now hold the lock. A failed
 * repair leaves the mutex inconsistent: unlocking it then makes it unrecoverable, so every
 * later locker gets ENOTRECOVERABLE (WSD_EBROKEN) and the master rebuilds the segment.
 */
static int lock_recover(struct shm_mutex *m, shm_repair_fn repair, void *ctx)
{
    if (repair != NULL && repair(ctx) != 0) {
        pthread_mutex_unlock(&m->m);
        return WSD_EBROKEN;
    }
    if (pthread_mutex_consistent(&m->m) != 0) {
        pthread_mutex_unlock(&m->m);
        return WSD_EBROKEN;
    }
    m->repairs++;
    return 0;
}

int shm_lock(struct shm_mutex *m, shm_repair_fn repair, void *ctx)
{
    int rc = pthread_mutex_lock(&m->m);

    if (rc == 0)
        return 0;
    if (rc == EOWNERDEAD)
        return lock_recover(m, repair, ctx);
    return WSD_EBROKEN; /* ENOTRECOVERABLE, or a mutex that was never initialised */
}

void shm_unlock(struct shm_mutex *m)
{
    pthread_mutex_unlock(&m->m);
}
