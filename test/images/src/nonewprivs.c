/* nnp: installed setuid root; prints the effective uid it runs with, like
 * registry.k8s.io/e2e-test-images/nonewprivs. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
	printf("Effective uid: %d\n", (int)geteuid());
	return 0;
}
