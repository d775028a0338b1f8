/* seg.c - creating, mapping and validating the shared segment. */
#include "shm/seg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "shm/conn_table.h"
#include "shm/names.h"
#include "shm/ring.h"

struct seg_layout {
    uint64_t workers_off;
    uint64_t conn_hdr_off;
    uint64_t conns_off;
    uint64_t rings_off;
    uint64_t ring_stride;
    uint64_t users_off;
    uint64_t groups_off;
    uint32_t users_cap;
    uint32_t groups_cap;
    uint64_t ips_off;
    uint32_t ips_cap;
    uint64_t total_size;
};

/* Entries of a name table for n names at most: a power of two, at most 3/4 full. */
static uint32_t names_capacity_for(uint32_t n)
{
    uint64_t want = (uint64_t)n * 4 / 3 + 1, cap = 16;
    while (cap < want)
        cap <<= 1;
    return (uint32_t)cap;
}

static uint64_t round_page(uint64_t x)
{
    return (x + SHM_SEG_PAGE - 1) & ~(uint64_t)(SHM_SEG_PAGE - 1);
}

/* The one place that decides where everything goes; creation and validation share it. */
static void seg_layout(uint32_t conn_count, uint64_t ring_bytes, uint32_t groups_cap,
                       struct seg_layout *l)
{
    l->workers_off = round_page(sizeof(struct shm_seg_header));
    l->conn_hdr_off =
        round_page(l->workers_off + SHM_SEG_WORKERS * sizeof(struct shm_seg_worker));
    l->conns_off = round_page(l->conn_hdr_off + sizeof(struct conn_table_header));
    l->rings_off =
        round_page(l->conns_off + (uint64_t)conn_count * sizeof(struct conn_table_slot));
    l->ring_stride = round_page(ring_footprint(ring_bytes));
    l->users_cap = names_capacity_for(conn_count);
    l->groups_cap = groups_cap;
    l->users_off = l->rings_off + SHM_SEG_WORKERS * l->ring_stride;
    l->groups_off = round_page(l->users_off + names_size(l->users_cap));
    l->ips_off = round_page(l->groups_off + names_size(l->groups_cap));
    l->ips_cap = 16;
    while (l->ips_cap < 2 * (uint64_t)conn_count) /* at most half full: short probes */
        l->ips_cap <<= 1;
    l->total_size = round_page(l->ips_off + (uint64_t)l->ips_cap * sizeof(struct conn_table_ip));
}

static bool name_is_valid(const char *name)
{
    size_t len = strnlen(name, SHM_SEG_NAME_LEN);

    return len >= 2 && len < SHM_SEG_NAME_LEN && name[0] == '/' &&
           strchr(name + 1, '/') == NULL;
}

static bool ring_bytes_valid(uint64_t ring_bytes)
{
    return ring_bytes >= SHM_SEG_RING_MIN && ring_bytes <= SHM_SEG_RING_MAX &&
           (ring_bytes & (ring_bytes - 1)) == 0;
}

static bool sizes_valid(const struct shm_seg_sizes *sz)
{
    return sz->max_connections >= 1 && sz->max_connections <= SHM_SEG_MAX_CONNECTIONS &&
           ring_bytes_valid(sz->ring_bytes);
}

/* Fills the process-local handle from a mapping whose header is already valid. */
static void seg_attach(struct shm_seg *seg, void *base, size_t size, bool readonly)
{
    unsigned char *b = base;

    seg->base = base;
    seg->size = size;
    seg->readonly = readonly;
    seg->hdr = base;
    seg->workers = (struct shm_seg_worker *)(b + seg->hdr->workers_off);
    seg->conn_hdr = (struct conn_table_header *)(b + seg->hdr->conn_hdr_off);
    seg->conns = (struct conn_table_slot *)(b + seg->hdr->conns_off);
    seg->rings = b + seg->hdr->rings_off;
    seg->ring_stride = seg->hdr->ring_stride;
    seg->users = (struct names_table *)(b + seg->hdr->users_off);
    seg->groups = (struct names_table *)(b + seg->hdr->groups_off);
    seg->ips = (struct conn_table_ip *)(b + seg->hdr->ips_off);
}

static void header_init(struct shm_seg_header *h, const struct shm_seg_sizes *sz,
                        const struct seg_layout *l)
{
    h->layout_version = SHM_SEG_LAYOUT_VERSION;
    h->header_size = sizeof(struct shm_seg_header);
    h->worker_size = sizeof(struct shm_seg_worker);
    h->worker_count = SHM_SEG_WORKERS;
    h->conn_size = sizeof(struct conn_table_slot);
    h->conn_count = sz->max_connections;
    h->conn_header_size = sizeof(struct conn_table_header);
    h->ring_header_size = sizeof(struct ring);
    h->ring_bytes = sz->ring_bytes;
    h->workers_off = l->workers_off;
    h->conn_hdr_off = l->conn_hdr_off;
    h->conns_off = l->conns_off;
    h->rings_off = l->rings_off;
    h->ring_stride = l->ring_stride;
    h->total_size = l->total_size;
    h->users_off = l->users_off;
    h->groups_off = l->groups_off;
    h->users_cap = l->users_cap;
    h->groups_cap = l->groups_cap;
    h->ips_off = l->ips_off;
    h->ips_cap = l->ips_cap;
    h->master_pid = (int32_t)getpid();
    h->start_wall_ms = clock_wall_ms();
    atomic_store_explicit(&h->state, SHM_SEG_STARTING, memory_order_relaxed);
    atomic_store_explicit(&h->broken, 0, memory_order_relaxed);
    atomic_store_explicit(&h->config_generation, 0, memory_order_relaxed);
}

/* Writes what the tables need; the magic goes last so a half-made segment never validates. */
static int seg_init(struct shm_seg *seg, const struct shm_seg_sizes *sz,
                    const struct seg_layout *l)
{
    uint32_t i;
    int rc;

    header_init(seg->base, sz, l);
    seg_attach(seg, seg->base, seg->size, false);
    rc = conn_table_init(seg);
    if (rc == 0)
        rc = names_init(seg->users, l->users_cap);
    if (rc == 0)
        rc = names_init(seg->groups, l->groups_cap);
    if (rc != 0)
        return rc;
    for (i = 0; i < SHM_SEG_WORKERS; i++) {
        rc = ring_init(shm_seg_ring(seg, i), sz->ring_bytes, i);
        if (rc != 0)
            return rc;
    }
    atomic_thread_fence(memory_order_release);
    seg->hdr->magic = SHM_SEG_MAGIC;
    return 0;
}

static int ftruncate_retry(int fd, off_t len)
{
    int rc;

    do
        rc = ftruncate(fd, len);
    while (rc == -1 && errno == EINTR);
    return rc;
}

int shm_seg_create(struct shm_seg *seg, const char *name, const struct shm_seg_sizes *sz)
{
    struct seg_layout l;
    void *base;
    int fd, saved, rc = WSD_EIO;

    memset(seg, 0, sizeof(*seg));
    if (!name_is_valid(name) || !sizes_valid(sz))
        return WSD_EINVAL;
    seg_layout(sz->max_connections, sz->ring_bytes,
               names_capacity_for(sz->max_groups ? sz->max_groups : 1024), &l);
    shm_unlink(name); /* a stale segment of a previous run; ENOENT is the normal case */
    fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd == -1)
        return WSD_EIO;
    if (ftruncate_retry(fd, (off_t)l.total_size) == -1)
        goto out_unlink;
    base = mmap(NULL, (size_t)l.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        goto out_unlink;
    close(fd);
    seg->base = base;
    seg->size = (size_t)l.total_size;
    rc = seg_init(seg, sz, &l);
    if (rc != 0)
        goto out_unmap;
    return 0;

out_unmap:
    saved = errno;
    munmap(base, (size_t)l.total_size);
    memset(seg, 0, sizeof(*seg));
    shm_unlink(name);
    errno = saved;
    return rc;
out_unlink:
    saved = errno;
    close(fd);
    shm_unlink(name);
    errno = saved;
    return rc;
}

static bool header_sizes_match(const struct shm_seg_header *h)
{
    return h->magic == SHM_SEG_MAGIC && h->layout_version == SHM_SEG_LAYOUT_VERSION &&
           h->header_size == sizeof(struct shm_seg_header) &&
           h->worker_size == sizeof(struct shm_seg_worker) &&
           h->worker_count == SHM_SEG_WORKERS &&
           h->conn_size == sizeof(struct conn_table_slot) &&
           h->conn_header_size == sizeof(struct conn_table_header) &&
           h->ring_header_size == sizeof(struct ring) && h->conn_count >= 1 &&
           h->conn_count <= SHM_SEG_MAX_CONNECTIONS && ring_bytes_valid(h->ring_bytes);
}

/* True when the mapping of map_size bytes holds a segment this build can read. */
static bool header_valid(const struct shm_seg_header *h, uint64_t map_size)
{
    const struct conn_table_header *conn_hdr;
    const struct ring *ring0;
    struct seg_layout l;

    if (map_size < sizeof(*h) || !header_sizes_match(h))
        return false;
    if (h->groups_cap < 16 || (h->groups_cap & (h->groups_cap - 1)) != 0)
        return false;
    seg_layout(h->conn_count, h->ring_bytes, h->groups_cap, &l);
    if (h->workers_off != l.workers_off || h->conn_hdr_off != l.conn_hdr_off ||
        h->conns_off != l.conns_off || h->rings_off != l.rings_off ||
        h->ring_stride != l.ring_stride || h->total_size != l.total_size ||
        h->users_off != l.users_off || h->groups_off != l.groups_off ||
        h->users_cap != l.users_cap || h->groups_cap != l.groups_cap ||
        h->ips_off != l.ips_off || h->ips_cap != l.ips_cap || l.total_size > map_size)
        return false;
    conn_hdr = (const struct conn_table_header *)((const unsigned char *)h + h->conn_hdr_off);
    ring0 = (const struct ring *)((const unsigned char *)h + h->rings_off);
    return conn_hdr->count == h->conn_count && ring0->magic == RING_MAGIC &&
           ring0->size == h->ring_bytes;
}

int shm_seg_open_readonly(struct shm_seg *seg, const char *name)
{
    struct stat st;
    void *base;
    int fd, saved;

    memset(seg, 0, sizeof(*seg));
    if (!name_is_valid(name))
        return WSD_EINVAL;
    fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (fd == -1)
        return errno == ENOENT ? WSD_ENOENT : WSD_EIO;
    if (fstat(fd, &st) == -1)
        goto out_close;
    if ((uint64_t)st.st_size < sizeof(struct shm_seg_header)) {
        close(fd);
        return WSD_EINVAL;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        goto out_close;
    close(fd);
    atomic_thread_fence(memory_order_acquire);
    if (!header_valid(base, (uint64_t)st.st_size)) {
        munmap(base, (size_t)st.st_size);
        return WSD_EINVAL;
    }
    seg_attach(seg, base, (size_t)st.st_size, true);
    return 0;

out_close:
    saved = errno;
    close(fd);
    errno = saved;
    return WSD_EIO;
}

void shm_seg_close(struct shm_seg *seg)
{
    if (seg->base != NULL)
        munmap(seg->base, seg->size);
    memset(seg, 0, sizeof(*seg));
}

int shm_seg_unlink(const char *name)
{
    if (shm_unlink(name) == -1)
        return errno == ENOENT ? WSD_ENOENT : WSD_EIO;
    return 0;
}

void shm_seg_name_for(const char *control_socket, char out[SHM_SEG_NAME_LEN])
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    const unsigned char *p;

    for (p = (const unsigned char *)control_socket; *p != '\0'; p++) {
        h ^= *p;
        h *= UINT64_C(0x100000001b3);
    }
    snprintf(out, SHM_SEG_NAME_LEN, "/wsd-%016" PRIx64, h);
}

struct shm_seg_worker *shm_seg_worker(const struct shm_seg *seg, uint32_t i)
{
    if (i >= SHM_SEG_WORKERS)
        return NULL;
    return &seg->workers[i];
}

struct ring *shm_seg_ring(const struct shm_seg *seg, uint32_t i)
{
    if (i >= SHM_SEG_WORKERS)
        return NULL;
    return (struct ring *)(seg->rings + (uint64_t)i * seg->ring_stride);
}

uint32_t shm_seg_state(const struct shm_seg *seg)
{
    return atomic_load_explicit(&seg->hdr->state, memory_order_acquire);
}

void shm_seg_set_state(struct shm_seg *seg, enum shm_seg_run_state state)
{
    atomic_store_explicit(&seg->hdr->state, (uint32_t)state, memory_order_release);
}

void shm_seg_mark_broken(struct shm_seg *seg)
{
    atomic_store_explicit(&seg->hdr->broken, 1, memory_order_release);
}

bool shm_seg_is_broken(const struct shm_seg *seg)
{
    return atomic_load_explicit(&seg->hdr->broken, memory_order_acquire) != 0;
}

uint64_t shm_seg_bump_config_generation(struct shm_seg *seg)
{
    return atomic_fetch_add_explicit(&seg->hdr->config_generation, 1, memory_order_acq_rel) + 1;
}

enum shm_seg_close_bucket shm_seg_close_bucket(uint16_t code)
{
    switch (code) {
    case 1000: return SHM_SEG_CLOSE_NORMAL;
    case 1001: return SHM_SEG_CLOSE_GOING_AWAY;
    case 1002: return SHM_SEG_CLOSE_PROTOCOL;
    case 1003: return SHM_SEG_CLOSE_UNSUPPORTED;
    case 1006: return SHM_SEG_CLOSE_ABNORMAL;
    case 1007: return SHM_SEG_CLOSE_INVALID_DATA;
    case 1008: return SHM_SEG_CLOSE_POLICY;
    case 1009: return SHM_SEG_CLOSE_TOO_BIG;
    case 1011: return SHM_SEG_CLOSE_INTERNAL;
    case 4000: return SHM_SEG_CLOSE_HEARTBEAT;
    case 4010: return SHM_SEG_CLOSE_SLOW;
    default: break;
    }
    if (code >= 4000 && code <= 4999)
        return SHM_SEG_CLOSE_APP;
    return SHM_SEG_CLOSE_OTHER;
}

enum shm_seg_hs_bucket shm_seg_hs_bucket(int status)
{
    switch (status) {
    case 400: return SHM_SEG_HS_400;
    case 403: return SHM_SEG_HS_403;
    case 404: return SHM_SEG_HS_404;
    case 405: return SHM_SEG_HS_405;
    case 408: return SHM_SEG_HS_408;
    case 426: return SHM_SEG_HS_426;
    case 429: return SHM_SEG_HS_429;
    case 431: return SHM_SEG_HS_431;
    case 503: return SHM_SEG_HS_503;
    default: return SHM_SEG_HS_OTHER;
    }
}
