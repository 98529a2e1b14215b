/* exit(42): stdio buffers are flushed and the status is 42. */
#include "check.h"

int main(void) {
    setvbuf(stdout, NULL, _IOFBF, 4096); /* fully buffered: exit must flush */
    printf("buffered line before exit\n");
    exit(42);
}
