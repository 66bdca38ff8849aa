package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"flotilla.dev/lib/ids"
	imagev1 "flotilla.dev/proto/image/v1"
	"github.com/containerd/errdefs"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/storage"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fullID: an image id, with or without "sha256:".
func fullID(s string) bool { return ids.Hex(strings.TrimPrefix(s, "sha256:"), 64, 64) }

// idPrefix: what `crictl inspecti 3f2a` may name an image by.
func idPrefix(s string) bool { return ids.Hex(s, 3, 63) }

// Lookup finds a stored image by id, id prefix, name, short name or
// name@digest. A missing image is errdefs.ErrNotFound; a malformed
// reference is errdefs.ErrInvalidArgument.
func (s *Service) Lookup(spec string) (*storage.Image, error) {
	if spec == "" {
		return nil, fmt.Errorf("image reference is empty: %w", errdefs.ErrInvalidArgument)
	}
	if fullID(spec) {
		img, err := s.o.Store.Image(strings.TrimPrefix(spec, "sha256:"))
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", spec, errdefs.ErrNotFound)
		}
		return img, nil
	}
	candidates, err := shortnames.ResolveLocally(s.o.System, spec)
	if err != nil {
		if idPrefix(spec) {
			return s.byIDPrefix(spec)
		}
		return nil, fmt.Errorf("parse image reference %q: %v: %w", spec, err, errdefs.ErrInvalidArgument)
	}
	for _, c := range candidates {
		if img := s.byName(c); img != nil {
			return img, nil
		}
	}
	if idPrefix(spec) {
		return s.byIDPrefix(spec)
	}
	return nil, fmt.Errorf("image %s: %w", spec, errdefs.ErrNotFound)
}

func (s *Service) byIDPrefix(prefix string) (*storage.Image, error) {
	img, err := s.o.Store.Image(prefix)
	if err != nil || !strings.HasPrefix(img.ID, prefix) {
		return nil, fmt.Errorf("image %s: %w", prefix, errdefs.ErrNotFound)
	}
	return img, nil
}

// byName finds the image holding a tagged name, or a digest under a repository.
func (s *Service) byName(n reference.Named) *storage.Image {
	if c, ok := n.(reference.Canonical); ok {
		imgs, err := s.o.Store.ImagesByDigest(c.Digest())
		if err != nil {
			return nil
		}
		for i := range imgs {
			for _, name := range imgs[i].Names {
				if r, err := reference.ParseNormalizedNamed(name); err == nil && r.Name() == n.Name() {
					return imgs[i]
				}
			}
		}
		return nil
	}
	img, err := s.o.Store.Image(n.String())
	if err != nil {
		return nil
	}
	for _, name := range img.Names {
		if name == n.String() {
			return img
		}
	}
	return nil
}

// repoTagsDigests splits an image's names into RepoTags and RepoDigests:
// every repository it is known under, combined with every manifest digest.
func repoTagsDigests(img *storage.Image) (tags, digests []string) {
	repos := map[string]bool{}
	seen := map[string]bool{}
	for _, name := range img.Names {
		r, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			continue
		}
		repos[r.Name()] = true
		if t, ok := r.(reference.NamedTagged); ok {
			tags = append(tags, t.String())
		}
		if c, ok := r.(reference.Canonical); ok && !seen[c.String()] {
			seen[c.String()] = true
			digests = append(digests, c.String())
		}
	}
	ds := append([]string(nil), digestStrings(img)...)
	for repo := range repos {
		for _, d := range ds {
			v := repo + "@" + d
			if !seen[v] {
				seen[v] = true
				digests = append(digests, v)
			}
		}
	}
	sort.Strings(tags)
	sort.Strings(digests)
	return tags, digests
}

func digestStrings(img *storage.Image) []string {
	var out []string
	if img.Digest != "" {
		out = append(out, img.Digest.String())
	}
	for _, d := range img.Digests {
		if d != img.Digest {
			out = append(out, d.String())
		}
	}
	return out
}

// config reads the image's OCI configuration stored by the pull.
func (s *Service) config(img *storage.Image) (*imgspecv1.Image, []byte, error) {
	b, err := s.o.Store.ImageBigData(img.ID, "sha256:"+img.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("read config of image %s: %w", img.ID, err)
	}
	var c imgspecv1.Image
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, nil, fmt.Errorf("decode config of image %s: %w", img.ID, err)
	}
	return &c, b, nil
}

// toCRI converts a stored image to the CRI type.
func (s *Service) toCRI(img *storage.Image) (*runtimeapi.Image, error) {
	tags, digests := repoTagsDigests(img)
	out := &runtimeapi.Image{
		Id:          img.ID,
		RepoTags:    tags,
		RepoDigests: digests,
		Spec:        &runtimeapi.ImageSpec{Image: img.ID},
	}
	if size, err := s.o.Store.ImageSize(img.ID); err == nil && size > 0 {
		out.Size = uint64(size)
	} else if err != nil && errors.Is(err, storage.ErrImageUnknown) {
		return nil, fmt.Errorf("image %s: %w", img.ID, errdefs.ErrNotFound)
	}
	if c, _, err := s.config(img); err == nil {
		user := strings.SplitN(c.Config.User, ":", 2)[0]
		if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
			out.Uid = &runtimeapi.Int64Value{Value: uid}
		} else {
			out.Username = user
		}
	}
	return out, nil
}

// Info describes an image for image.v1 (sandboxd builds the OCI spec from
// its config). An image id names one config and one set of layers, so its
// config and size are read once and kept; the names are the image's
// current ones.
func (s *Service) Info(img *storage.Image) (*imagev1.ImageInfo, error) {
	st, err := s.static(img)
	if err != nil {
		return nil, err
	}
	tags, digests := repoTagsDigests(img)
	return &imagev1.ImageInfo{Id: img.ID, RepoTags: tags, RepoDigests: digests, ConfigJson: st.config, Size: st.size}, nil
}

// imageStatic is what never changes for an image id.
type imageStatic struct {
	config []byte
	size   uint64
}

// maxInfoCache bounds the cache of Info; past it the cache starts afresh.
const maxInfoCache = 512

func (s *Service) static(img *storage.Image) (imageStatic, error) {
	s.infoMu.Lock()
	st, ok := s.info[img.ID]
	s.infoMu.Unlock()
	if ok {
		return st, nil
	}
	c, err := s.toCRI(img)
	if err != nil {
		return st, err
	}
	_, cfg, err := s.config(img)
	if err != nil {
		return st, err
	}
	st = imageStatic{config: cfg, size: c.Size}
	s.infoMu.Lock()
	if s.info == nil || len(s.info) >= maxInfoCache {
		s.info = map[string]imageStatic{}
	}
	s.info[img.ID] = st
	s.infoMu.Unlock()
	return st, nil
}
