/* true: exits 0 at once; the payload of start_true (container start-to-exit,
 * timed from outside by the harness).  Installed as /bin/true in the rootfs. */
int main(void)
{
	return 0;
}
