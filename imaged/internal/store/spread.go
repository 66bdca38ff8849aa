package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// fsTopdirFlag is FS_TOPDIR_FL of linux/fs.h (chattr +T), which x/sys does
// not define.
const fsTopdirFlag = 0x00020000

// churnDirs are the directories under the graph root in which the overlay
// driver and the layer store create a directory for every container layer
// they create and for every layer they delete.
func churnDirs(root string) []string {
	home := filepath.Join(root, "overlay")
	return []string{
		home,                            // a directory per layer
		filepath.Join(home, "tempdirs"), // the driver's deletions
		filepath.Join(root, "overlay-layers", "tmp"), // the layer store's deletions
	}
}

// SpreadLayerDirs marks the directories in which containers' layers come and
// go as tops of directory hierarchies (chattr +T), so that ext4's Orlov
// allocator places each new layer directory, and with it the files in it, in a
// lightly used block group instead of in its parent's. Only the overlay
// driver's layout is known here.
//
// On ext4 without a journal, allocating an inode scans the group's free inodes
// from its start and passes over every one freed in the last 60 seconds, 360
// while its inode table block is still dirty (recently_deleted in
// fs/ext4/ialloc.c, as lib/boltstore also says). When the graph root's group
// is busy (on this machine, under /tmp, where every test and build comes and
// goes) that scan is most of a container's creation: by hand, 30 trees shaped
// like a container layer (12 inodes) right after 20 others were removed took
// 5.5-7.3 ms of CPU per tree in a directory under /tmp and 0.37-0.63 ms in a
// +T one next to it (0.2 ms under /var/tmp or /root, and on a new file system
// with or without the flag). With a journal there is no such scan and the flag
// only spreads the layers over the disk, as it does for /home. File systems
// without the flag (xfs, btrfs, tmpfs) are left as they are.
func SpreadLayerDirs(root string) error {
	var errs []error
	for _, d := range churnDirs(root) {
		// Created as c/storage would create them, before their first use.
		if err := os.MkdirAll(d, 0o700); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := setTopdir(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// setTopdir sets FS_TOPDIR_FL on dir. A file system that has no such flag
// is not an error.
func setTopdir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		if unsupported(err) {
			return nil
		}
		return fmt.Errorf("get flags of %s: %w", dir, err)
	}
	if flags&fsTopdirFlag != 0 {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsTopdirFlag)); err != nil {
		if unsupported(err) {
			return nil
		}
		return fmt.Errorf("set the top-directory flag on %s: %w", dir, err)
	}
	return nil
}

func unsupported(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)
}
