/* shm_lock_test.c - robust process-shared mutexes: owner death, repair, broken locks. */
#include "shm/lock.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/wsd.h"

/* Shared between the test process and its children: a lock and the record it guards. */
struct guarded {
    struct shm_mutex lock;
    uint64_t a; /* invariant when consistent: a == b */
    uint64_t b;
    uint64_t counter;
};

static struct guarded *g;
static int repair_calls; /* process-local: counts repairs run by this process */
static int repair_result;

static void setup(void)
{
    g = mmap(NULL, sizeof(*g), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert(g != MAP_FAILED);
    cr_assert_eq(shm_mutex_init(&g->lock), 0);
    repair_calls = 0;
    repair_result = 0;
}

static void teardown(void)
{
    munmap(g, sizeof(*g));
}

TestSuite(shm_lock, .init = setup, .fini = teardown);

/* Rebuilds the derived field b from a, as a table repair rebuilds derived fields. */
static int repair_record(void *ctx)
{
    struct guarded *r = ctx;

    repair_calls++;
    r->b = r->a;
    return repair_result;
}

/* how: 0 = _exit() holding the lock, 1 = SIGKILL itself holding the lock. */
static void child_dies_holding_lock(int how)
{
    pid_t pid = fork();
    int status;

    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (shm_lock(&g->lock, repair_record, g) != 0)
            _exit(2);
        g->a++; /* half-way through changing the record: b not updated */
        if (how == 1)
            raise(SIGKILL);
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    if (how == 1)
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    else
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

Test(shm_lock, repairs_once_after_owner_exits_holding_lock)
{
    child_dies_holding_lock(0);
    cr_assert_eq(shm_lock(&g->lock, repair_record, g), 0);
    cr_assert_eq(repair_calls, 1);
    cr_assert_eq(g->lock.repairs, 1);
    cr_assert_eq(g->a, 1);
    cr_assert_eq(g->b, 1, "repair rebuilt the record the dead owner was changing");
    shm_unlock(&g->lock);

    cr_assert_eq(shm_lock(&g->lock, repair_record, g), 0);
    cr_assert_eq(repair_calls, 1, "a consistent lock does not repair again");
    cr_assert_eq(g->lock.repairs, 1);
    shm_unlock(&g->lock);
}

Test(shm_lock, repairs_once_after_owner_killed_holding_lock)
{
    child_dies_holding_lock(1);
    cr_assert_eq(shm_lock(&g->lock, repair_record, g), 0);
    cr_assert_eq(repair_calls, 1);
    cr_assert_eq(g->lock.repairs, 1);
    cr_assert_eq(g->b, g->a);
    shm_unlock(&g->lock);
    cr_assert_eq(shm_lock(&g->lock, repair_record, g), 0);
    cr_assert_eq(repair_calls, 1);
    shm_unlock(&g->lock);
}

Test(shm_lock, counts_every_repair)
{
    child_dies_holding_lock(1);
    cr_assert_eq(shm_lock(&g->lock, repair_record, g), 0);
    shm_unlock(&g->lock);
    child_dies_holding_lock(0);
    cr_assert_eq(shm_lock(&g->lock, repair_record, g), 0);
    shm_unlock(&g->lock);
    cr_assert_eq(repair_calls, 2);
    cr_assert_eq(g->lock.repairs, 2);
}

Test(shm_lock, recovers_without_a_repair_function)
{
    child_dies_holding_lock(1);
    cr_assert_eq(shm_lock(&g->lock, NULL, NULL), 0);
    cr_assert_eq(g->lock.repairs, 1);
    shm_unlock(&g->lock);
    cr_assert_eq(shm_lock(&g->lock, NULL, NULL), 0);
    shm_unlock(&g->lock);
}

Test(shm_lock, uncontended_lock_never_repairs)
{
    int i;

    for (i = 0; i < 3; i++) {
        cr_assert_eq(shm_lock(&g->lock, repair_record, g), 0);
        shm_unlock(&g->lock);
    }
    cr_assert_eq(repair_calls, 0);
    cr_assert_eq(g->lock.repairs, 0);
}

Test(shm_lock, failed_repair_leaves_the_lock_broken_for_everyone)
{
    pid_t pid;
    int status;

    child_dies_holding_lock(1);
    repair_result = WSD_EBROKEN;
    cr_assert_eq(shm_lock(&g->lock, repair_record, g), WSD_EBROKEN);
    cr_assert_eq(repair_calls, 1);
    cr_assert_eq(g->lock.repairs, 0);

    repair_result = 0;
    cr_assert_eq(shm_lock(&g->lock, repair_record, g), WSD_EBROKEN);
    cr_assert_eq(repair_calls, 1, "an unrecoverable lock is not repaired again");

    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0)
        _exit(shm_lock(&g->lock, repair_record, g) == WSD_EBROKEN ? 0 : 1);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "other processes see it broken");
}

Test(shm_lock, excludes_other_processes)
{
    enum { CHILDREN = 3, ROUNDS = 20000 };
    pid_t pids[CHILDREN];
    int i, status;

    for (i = 0; i < CHILDREN; i++) {
        pids[i] = fork();
        cr_assert_neq(pids[i], -1);
        if (pids[i] == 0) {
            int n;

            for (n = 0; n < ROUNDS; n++) {
                if (shm_lock(&g->lock, repair_record, g) != 0)
                    _exit(2);
                g->counter = g->counter + 1; /* not atomic: only the lock protects it */
                shm_unlock(&g->lock);
            }
            _exit(0);
        }
    }
    for (i = 0; i < CHILDREN; i++) {
        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    cr_assert_eq(g->counter, (uint64_t)CHILDREN * ROUNDS);
}
