/* hello: writes "hello\n" to stdout with one write(2) and exits 0; the
 * payload of run_echo (a whole `run` whose output the harness checks,
 * timed from outside).  Installed as /bench/hello in the rootfs. */
#include <unistd.h>

int main(void)
{
	static const char msg[] = "hello\n";

	return write(1, msg, sizeof msg - 1) == (ssize_t)(sizeof msg - 1) ? 0 : 1;
}
