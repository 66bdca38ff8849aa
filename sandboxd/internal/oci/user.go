package oci

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// User is a resolved process identity.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32
	Name           string // empty when the uid has no passwd entry
}

// UserRequest is what the CRI and the image say about the user.
type UserRequest struct {
	RunAsUser     *int64 // CRI run_as_user
	RunAsUsername string
	RunAsGroup    *int64
	ImageUser     string // image config User: "", "name", "uid", "name:group", "uid:gid"
	Supplemental  []int64
	Strict        bool // SupplementalGroupsPolicy Strict: no groups from /etc/group
}

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// ResolveUser resolves req against the rootfs's /etc/passwd and /etc/group
// (read without leaving rootfs, whatever symlinks it holds).
func ResolveUser(rootfs string, req UserRequest) (User, error) {
	passwd, err := readInRoot(rootfs, "/etc/passwd", parsePasswd)
	if err != nil {
		return User{}, err
	}
	groups, err := readInRoot(rootfs, "/etc/group", parseGroup)
	if err != nil {
		return User{}, err
	}
	return resolve(req, passwd, groups)
}

func resolve(req UserRequest, passwd []passwdEntry, groups []groupEntry) (User, error) {
	var u User
	if req.RunAsGroup != nil && req.RunAsUser == nil && req.RunAsUsername == "" {
		return u, fmt.Errorf("run_as_group is set without run_as_user or run_as_username: %w", errdefs.ErrInvalidArgument)
	}
	userPart, groupPart := req.ImageUser, ""
	if i := strings.IndexByte(req.ImageUser, ':'); i >= 0 {
		userPart, groupPart = req.ImageUser[:i], req.ImageUser[i+1:]
	}
	switch {
	case req.RunAsUser != nil:
		if *req.RunAsUser < 0 || *req.RunAsUser > 1<<32-2 {
			return u, fmt.Errorf("run_as_user %d out of range: %w", *req.RunAsUser, errdefs.ErrInvalidArgument)
		}
		u.UID = uint32(*req.RunAsUser)
		if p := byUID(passwd, u.UID); p != nil {
			u.GID, u.Name = p.gid, p.name
		}
		groupPart = "" // the image's group goes with the image's user
	case req.RunAsUsername != "":
		p := byName(passwd, req.RunAsUsername)
		if p == nil {
			return u, fmt.Errorf("user %q not found in the image's /etc/passwd: %w", req.RunAsUsername, errdefs.ErrInvalidArgument)
		}
		u.UID, u.GID, u.Name = p.uid, p.gid, p.name
		groupPart = ""
	case userPart != "":
		if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
			u.UID = uint32(n)
			if p := byUID(passwd, u.UID); p != nil {
				u.GID, u.Name = p.gid, p.name
			}
		} else {
			p := byName(passwd, userPart)
			if p == nil {
				return u, fmt.Errorf("image user %q not found in the image's /etc/passwd: %w", userPart, errdefs.ErrInvalidArgument)
			}
			u.UID, u.GID, u.Name = p.uid, p.gid, p.name
		}
	default:
		if p := byUID(passwd, 0); p != nil {
			u.Name = p.name
		}
	}
	if groupPart != "" {
		if n, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			u.GID = uint32(n)
		} else {
			g := groupByName(groups, groupPart)
			if g == nil {
				return u, fmt.Errorf("image group %q not found in the image's /etc/group: %w", groupPart, errdefs.ErrInvalidArgument)
			}
			u.GID = g.gid
		}
	}
	if req.RunAsGroup != nil {
		if *req.RunAsGroup < 0 || *req.RunAsGroup > 1<<32-2 {
			return u, fmt.Errorf("run_as_group %d out of range: %w", *req.RunAsGroup, errdefs.ErrInvalidArgument)
		}
		u.GID = uint32(*req.RunAsGroup)
	}
	seen := map[uint32]bool{}
	add := func(g uint32) {
		if !seen[g] {
			seen[g] = true
			u.AdditionalGids = append(u.AdditionalGids, g)
		}
	}
	add(u.GID)
	if !req.Strict && u.Name != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == u.Name {
					add(g.gid)
				}
			}
		}
	}
	for _, g := range req.Supplemental {
		if g < 0 || g > 1<<32-2 {
			return u, fmt.Errorf("supplemental group %d out of range: %w", g, errdefs.ErrInvalidArgument)
		}
		add(uint32(g))
	}
	return u, nil
}

func byUID(ps []passwdEntry, uid uint32) *passwdEntry {
	for i := range ps {
		if ps[i].uid == uid {
			return &ps[i]
		}
	}
	return nil
}

func byName(ps []passwdEntry, name string) *passwdEntry {
	for i := range ps {
		if ps[i].name == name {
			return &ps[i]
		}
	}
	return nil
}

func groupByName(gs []groupEntry, name string) *groupEntry {
	for i := range gs {
		if gs[i].name == name {
			return &gs[i]
		}
	}
	return nil
}

// readInRoot opens path inside root (symlinks resolved as if root were /);
// a missing file parses as empty.
func readInRoot[T any](root, path string, parse func(io.Reader) []T) ([]T, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", root, err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, strings.TrimPrefix(path, "/"), &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in rootfs: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	return parse(io.LimitReader(f, 16<<20)), nil
}

func parsePasswd(r io.Reader) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)})
	}
	return out
}

func parseGroup(r io.Reader) []groupEntry {
	var out []groupEntry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		g := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	}
	return out
}
