/* clock.h - monotonic time for deadlines, wall time for timestamps. */
#ifndef WSD_CORE_CLOCK_H
#define WSD_CORE_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC; the same clock in every process of the host. */
int64_t clock_mono_ms(void);
/* Microseconds of CLOCK_MONOTONIC. */
int64_t clock_mono_us(void);
/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);

#endif
