/* prctl PR_SET_NAME / PR_GET_NAME. */
#include "check.h"
#include <sys/prctl.h>

int main(void) {
    char name[32];
    memset(name, 0, sizeof name);
    CHECK(prctl(PR_GET_NAME, name, 0, 0, 0) == 0);
    SHOW("initial name: %s", name);
    CHECK(prctl(PR_SET_NAME, "cordon-name", 0, 0, 0) == 0);
    memset(name, 'x', sizeof name);
    CHECK(prctl(PR_GET_NAME, name, 0, 0, 0) == 0);
    SHOW("after set: %s", name);
    CHECK(prctl(PR_SET_NAME, "0123456789abcdefXYZ", 0, 0, 0) == 0);
    memset(name, 'x', sizeof name);
    CHECK(prctl(PR_GET_NAME, name, 0, 0, 0) == 0);
    SHOW("truncated: %s (len %zu)", name, strlen(name));
    CHECK(name[15] == 0 && name[16] == 'x'); /* exactly 16 bytes are written */
    CHECK(prctl(PR_SET_NAME, "", 0, 0, 0) == 0);
    CHECK(prctl(PR_GET_NAME, name, 0, 0, 0) == 0);
    SHOW("empty: \"%s\"", name);
    CHECK_ERRNO(prctl(PR_SET_NAME, (char *)8, 0, 0, 0), EFAULT);
    CHECK_ERRNO(prctl(PR_GET_NAME, (char *)8, 0, 0, 0), EFAULT);
    return 0;
}
