/* Loads a compiled program the way the shim's C helper does (one thread,
 * no TSYNC), then makes syscalls and prints "<op> <errno>" per op.
 * usage: loader PROG_FILE FLAGS OP...; OP is ABI:NR[:ARG0], ABI x86_64 (the
 * syscall instruction) or i386 (int $0x80, AUDIT_ARCH_I386 for seccomp). */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static char prog[1 << 20];

int main(int argc, char **argv) {
	if (argc < 3)
		return 100;
	int fd = open(argv[1], O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, prog, sizeof prog);
	if (n <= 0 || n % 8) {
		perror("read program");
		return 100;
	}
	close(fd);
	struct sock_fprog fp = {.len = n / 8, .filter = (struct sock_filter *)prog};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, strtoul(argv[2], NULL, 0), &fp)) {
		perror("seccomp");
		return 100;
	}
	/* From here on only write and exit_group, no stdio. */
	for (int i = 3; i < argc; i++) {
		char abi[16] = "";
		unsigned long nr = 0, a0 = 0;
		sscanf(argv[i], "%15[^:]:%li:%li", abi, &nr, &a0);
		long e;
		if (strcmp(abi, "i386") == 0) {
			int r;
			__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a0), "c"(0), "d"(0) : "memory");
			e = r < 0 && r > -4096 ? -r : 0;
		} else {
			e = syscall(nr, a0, 0, 0) < 0 ? errno : 0;
		}
		char line[128];
		int len = snprintf(line, sizeof line, "%s %ld\n", argv[i], e);
		if (write(1, line, len) != len)
			return 101;
	}
	return 0;
}
