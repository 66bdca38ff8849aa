package cri

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"flotilla.dev/sandboxd/internal/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostOOMPolicy reads sandboxd's own oom_score_adj and whether it may go
// lower (CAP_SYS_RESOURCE).
func hostOOMPolicy() oci.OOMPolicy {
	var p oci.OOMPolicy
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		p.Current, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if eff, err := oci.EffectiveSet(); err == nil {
		p.CanLower = eff.Has("CAP_SYS_RESOURCE")
	}
	return p
}

// deviceFromPath describes the host device at path.
func deviceFromPath(path string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, fmt.Errorf("%s is not a device", path)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{Path: path, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: &uid, GID: &gid}, nil
}

// hostDevices lists the host's devices for privileged containers.
func hostDevices() []specs.LinuxDevice {
	out := []specs.LinuxDevice{}
	_ = filepath.WalkDir("/dev", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/fd":
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&fs.ModeDevice == 0 || p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		if dev, err := deviceFromPath(p); err == nil {
			out = append(out, dev)
		}
		return nil
	})
	return out
}

func apparmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}
