package store

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// ext4Image mounts a new ext4 file system without a journal (as this
// machine's root) of the given size, made with the given mkfs.ext4 options,
// and returns its mount point.
func ext4Image(t testing.TB, size string, opts ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-q", "-F", "-O", "^has_journal"}, opts...)
	mkfsPath, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		mkfsPath = "/usr/sbin/mkfs.ext4" // root's PATH without sbin
	}
	mkfs := exec.Command(mkfsPath, append(args, img, size)...)
	if out, err := mkfs.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Fatalf("statfs %s: type %x, %v", mnt, st.Type, err)
	}
	return mnt
}

func hasTopdir(t testing.TB, dir string) bool {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatalf("get flags of %s: %v", dir, err)
	}
	return flags&fsTopdirFlag != 0
}

// groupsOf creates n directories in parent and returns the block groups
// their inodes were allocated in.
func groupsOf(t *testing.T, parent string, n int, ipg uint64) map[uint64]int {
	t.Helper()
	groups := map[uint64]int{}
	for i := range n {
		d := filepath.Join(parent, fmt.Sprintf("layer%d", i))
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			t.Fatal(err)
		}
		groups[(st.Ino-1)/ipg]++
	}
	return groups
}

// The graph root's layer directories get the top-directory flag, and on
// ext4 that spreads new layers over the block groups, where in a plain
// directory they all go to their parent's group.
func TestSpreadLayerDirsOnExt4(t *testing.T) {
	// 256 MiB in 8 groups of 8192 4-KiB blocks and 2048 inodes, one group
	// per flex group, so that the Orlov allocator has 8 places to choose
	// from.
	const ipg = 2048
	root := ext4Image(t, "256M", "-b", "4096", "-g", "8192", "-G", "1", "-N", fmt.Sprint(8*ipg))
	if err := SpreadLayerDirs(root); err != nil {
		t.Fatal(err)
	}
	for _, d := range churnDirs(root) {
		if !hasTopdir(t, d) {
			t.Errorf("%s has no top-directory flag", d)
		}
	}
	// Again: already set is not an error.
	if err := SpreadLayerDirs(root); err != nil {
		t.Fatal(err)
	}

	plain := filepath.Join(root, "plain")
	if err := os.Mkdir(plain, 0o700); err != nil {
		t.Fatal(err)
	}
	if g := groupsOf(t, plain, 8, ipg); len(g) != 1 {
		t.Errorf("8 directories in a plain directory went to groups %v, want all in their parent's", g)
	}
	if g := groupsOf(t, filepath.Join(root, "overlay"), 8, ipg); len(g) < 4 {
		t.Errorf("8 layer directories went to groups %v, want them spread over at least 4 of 8", g)
	}
}

// On a file system without the flag (tmpfs) the directories are still
// created and nothing fails.
func TestSpreadLayerDirsWithoutTheFlag(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount)")
	}
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(root, 0); err != nil {
			t.Errorf("unmount %s: %v", root, err)
		}
	})
	if err := SpreadLayerDirs(root); err != nil {
		t.Fatalf("tmpfs: %v", err)
	}
	for _, d := range churnDirs(root) {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v", d, fi, err)
		}
	}
}
