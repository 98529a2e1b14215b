/* idle: does nothing, forever: pause(2) in a loop, so it never wakes unless
 * a signal arrives (SIGTERM and SIGKILL end it; as a container's PID 1 only
 * SIGKILL does).  The init of idle_memory, whose host-side resident memory
 * the harness sums while it sleeps.  Installed as /bench/idle in the rootfs. */
#include <unistd.h>

int main(void)
{
	for (;;)
		pause();
}
