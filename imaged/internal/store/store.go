// Package store opens imaged's containers/storage store and the
// containers/image SystemContext that goes with it. Everything imaged writes
// lives under the configured root and run root.
package store

import (
	"fmt"
	"os"
	"path/filepath"

	"flotilla.dev/imaged/internal/config"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// Open opens (creating if needed) the store described by cfg.
func Open(cfg *config.Config) (storage.Store, error) {
	for _, d := range []string{cfg.Root, cfg.RunRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create store dir: %w", err)
		}
	}
	s, err := storage.GetStore(storage.StoreOptions{
		RunRoot:         cfg.RunRoot,
		GraphRoot:       cfg.Root,
		GraphDriverName: cfg.StorageDriver,
		// Container layers' records live in the run root (tmpfs on a
		// node) and are written without fsync: a restart of imaged keeps
		// them, a reboot loses them and the start-up collection removes
		// their directories (see rootfs.CreateRootfs). Images stay in
		// the graph root, fsynced.
		// That also mounts their overlays "volatile" (c/storage's default
		// for a transient store): unmounting one does not sync the whole
		// file system under the graph root, which took 12 ms with 32 MB
		// dirty there, and syncs inside a container are not written
		// through, as its layer does not outlive a crash of the node.
		TransientStore: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open storage at %s: %w", cfg.Root, err)
	}
	return s, nil
}

// SystemContext returns the containers/image context with every path set
// explicitly, so nothing is read from or written to /var/lib/containers or
// $HOME.
func SystemContext(cfg *config.Config) *types.SystemContext {
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    cfg.RegistriesConf,
		SystemRegistriesConfDirPath: cfg.RegistriesConf + ".d",
		RegistriesDirPath:           cfg.RegistriesDir,
		SignaturePolicyPath:         cfg.SignaturePolicy,
		BlobInfoCacheDir:            filepath.Join(cfg.Root, "flotilla-cache"),
		UserShortNameAliasConfPath:  filepath.Join(cfg.Root, "flotilla-cache", "short-name-aliases.conf"),
		BigFilesTemporaryDir:        filepath.Join(cfg.Root, "flotilla-tmp"),
		AuthFilePath:                cfg.AuthFile,
		DockerRegistryUserAgent:     "flotilla-imaged",
	}
	if sys.AuthFilePath == "" {
		// An auth file that does not exist: never fall back to $HOME or $XDG_RUNTIME_DIR.
		sys.AuthFilePath = filepath.Join(cfg.Root, "flotilla-cache", "no-auth.json")
	}
	return sys
}

// PrepareDirs creates the directories SystemContext points into.
func PrepareDirs(cfg *config.Config) error {
	for _, d := range []string{filepath.Join(cfg.Root, "flotilla-cache"), filepath.Join(cfg.Root, "flotilla-tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return nil
}

// GC deletes layers that no image and no container references: what a pull
// that failed or was killed half-way left behind.
func GC(s storage.Store) (removed int, err error) {
	images, err := s.Images()
	if err != nil {
		return 0, err
	}
	containers, err := s.Containers()
	if err != nil {
		return 0, err
	}
	layers, err := s.Layers()
	if err != nil {
		return 0, err
	}
	byID := map[string]storage.Layer{}
	for _, l := range layers {
		byID[l.ID] = l
	}
	keep := map[string]bool{}
	var mark func(id string)
	mark = func(id string) {
		for id != "" && !keep[id] {
			keep[id] = true
			id = byID[id].Parent
		}
	}
	for _, img := range images {
		mark(img.TopLayer)
		for _, l := range img.MappedTopLayers {
			mark(l)
		}
	}
	for _, c := range containers {
		mark(c.LayerID)
	}
	// Delete children before parents.
	for changed := true; changed; {
		changed = false
		parents := map[string]bool{}
		for _, l := range layers {
			if _, ok := byID[l.ID]; ok && l.Parent != "" {
				parents[l.Parent] = true
			}
		}
		for _, l := range layers {
			if _, ok := byID[l.ID]; !ok || keep[l.ID] || parents[l.ID] {
				continue
			}
			if err := s.DeleteLayer(l.ID); err != nil {
				return removed, fmt.Errorf("delete unreferenced layer %s: %w", l.ID, err)
			}
			delete(byID, l.ID)
			removed++
			changed = true
		}
	}
	return removed, nil
}
