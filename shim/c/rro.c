// `flotilla-shim rro ROOTFS DST...`: the createContainer hook sandboxd puts in
// a container's spec for its recursive read-only mounts (CRI
// Mount.recursive_read_only). runc 1.1 has no "rro" mount option; runc runs
// createContainer hooks in the container's mount namespace after it made the
// spec's mounts and before pivot_root, so the hook makes each DST (resolved
// inside ROOTFS, as runc resolved it) and every mount under it read-only with
// mount_setattr(AT_RECURSIVE). Any failure fails the hook, and so the create.
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

static void say(const char *what, const char *path, int err)
{
	char buf[4200];
	int n = snprintf(buf, sizeof buf, "flotilla-shim rro: %s %s: %s\n", what, path, strerror(err));
	if (n > 0)
		write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

int rro_main(int n, char **args)
{
	int root = open(args[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		say("open", args[0], errno);
		return 1;
	}
	for (int i = 1; i < n; i++) {
		// Symbolic links in the image resolve inside the rootfs, never to the host.
		struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
		int fd = (int)syscall(SYS_openat2, root, args[i], &how, sizeof how);
		if (fd < 0) {
			say("open", args[i], errno);
			return 1;
		}
		struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
		if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
			say("mount_setattr", args[i], errno);
			return 1;
		}
		close(fd);
	}
	close(root);
	return 0;
}
