package oci

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
)

func rootfsWith(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(passwd), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte(group), 0o644)
	return root
}

const passwd = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/sh\nuser1000:x:1000:1000::/home:/bin/sh\n"
const group = "root:x:0:\nwww-data:x:33:\nextra:x:50000:user1000\nother:x:60:www-data,user1000\n"

func i64(v int64) *int64 { return &v }

func TestResolveUser(t *testing.T) {
	root := rootfsWith(t, passwd, group)
	cases := []struct {
		name string
		req  UserRequest
		uid  uint32
		gid  uint32
		gids []uint32
	}{
		{"default root", UserRequest{}, 0, 0, []uint32{0}},
		{"image uid only", UserRequest{ImageUser: "1002"}, 1002, 0, []uint32{0}},
		{"image username", UserRequest{ImageUser: "www-data"}, 33, 33, []uint32{33, 60}},
		{"image uid:gid", UserRequest{ImageUser: "1003:1004"}, 1003, 1004, []uint32{1004}},
		{"image name:gid", UserRequest{ImageUser: "www-data:1004"}, 33, 1004, []uint32{1004, 60}},
		{"image predefined group", UserRequest{ImageUser: "1000"}, 1000, 1000, []uint32{1000, 50000, 60}},
		{"run_as_user overrides image", UserRequest{RunAsUser: i64(33), ImageUser: "1003:1004"}, 33, 33, []uint32{33, 60}},
		{"run_as_username", UserRequest{RunAsUsername: "user1000"}, 1000, 1000, []uint32{1000, 50000, 60}},
		{"run_as_group", UserRequest{RunAsUser: i64(1000), RunAsGroup: i64(7)}, 1000, 7, []uint32{7, 50000, 60}},
		{"supplemental merge", UserRequest{RunAsUser: i64(1000), Supplemental: []int64{9, 60}}, 1000, 1000, []uint32{1000, 50000, 60, 9}},
		{"supplemental strict", UserRequest{RunAsUser: i64(1000), Supplemental: []int64{9}, Strict: true}, 1000, 1000, []uint32{1000, 9}},
	}
	for _, c := range cases {
		u, err := ResolveUser(root, c.req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if u.UID != c.uid || u.GID != c.gid || !slices.Equal(u.AdditionalGids, c.gids) {
			t.Errorf("%s: got %d:%d %v, want %d:%d %v", c.name, u.UID, u.GID, u.AdditionalGids, c.uid, c.gid, c.gids)
		}
	}
	for _, bad := range []UserRequest{{RunAsUsername: "nobody"}, {ImageUser: "ghost"}, {ImageUser: "0:nogroup"}, {RunAsUser: i64(-1)}, {RunAsGroup: i64(5)}} {
		if _, err := ResolveUser(root, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: got %v, want InvalidArgument", bad, err)
		}
	}
}

func TestResolveUserStaysInRootfs(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	// An absolute symlink must resolve inside the rootfs, not to the host's file.
	os.Symlink("/hostetc/passwd", filepath.Join(root, "etc/passwd"))
	os.MkdirAll(filepath.Join(root, "hostetc"), 0o755)
	os.WriteFile(filepath.Join(root, "hostetc/passwd"), []byte("inside:x:4242:4242::/:/bin/sh\n"), 0o644)
	u, err := ResolveUser(root, UserRequest{ImageUser: "inside"})
	if err != nil || u.UID != 4242 {
		t.Fatalf("got %+v %v", u, err)
	}
	// No /etc/passwd at all: numeric users still work, names do not.
	empty := t.TempDir()
	if u, err := ResolveUser(empty, UserRequest{ImageUser: "5"}); err != nil || u.UID != 5 {
		t.Fatalf("numeric user without passwd: %+v %v", u, err)
	}
}
