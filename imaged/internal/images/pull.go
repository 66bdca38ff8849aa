package images

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"flotilla.dev/imaged/internal/store"
	flog "flotilla.dev/lib/log"
	eventsv1 "flotilla.dev/proto/events/v1"
	"github.com/containerd/errdefs"
	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ErrProgressTimeout cancels a pull that read no bytes for the configured time.
var ErrProgressTimeout = errors.New("pull made no progress")

type pullCall struct {
	done    chan struct{}
	id      string
	err     error
	waiters int
	cancel  context.CancelCauseFunc
}

// PullImage implements runtime.v1.ImageService.
func (s *Service) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	spec := req.GetImage().GetImage()
	id, err := s.Pull(ctx, spec, req.GetAuth())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: id}, nil
}

// Pull pulls spec (resolving short names) and returns the image id.
func (s *Service) Pull(ctx context.Context, spec string, auth *runtimeapi.AuthConfig) (string, error) {
	if spec == "" {
		return "", fmt.Errorf("image reference is empty: %w", errdefs.ErrInvalidArgument)
	}
	sys := *s.o.System
	if err := applyAuth(&sys, auth); err != nil {
		return "", err
	}
	candidates, err := resolvePull(&sys, spec)
	if err != nil {
		var rerr error = errdefs.ErrInvalidArgument
		if shortnames.IsShortName(spec) {
			rerr = errdefs.ErrFailedPrecondition
		}
		return "", fmt.Errorf("resolve image %q: %v: %w", spec, err, rerr)
	}
	var errs []error
	for _, c := range candidates {
		id, err := s.pullCoalesced(ctx, c, &sys)
		if err == nil {
			return id, nil
		}
		if ctx.Err() != nil {
			return "", err
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return "", errs[0]
	}
	return "", fmt.Errorf("%w: %w", pullErrors(errs), worstClass(errs))
}

func worstClass(errs []error) error {
	for _, c := range []error{errdefs.ErrPermissionDenied, errdefs.ErrUnauthenticated, errdefs.ErrUnavailable, context.DeadlineExceeded} {
		for _, e := range errs {
			if errors.Is(e, c) {
				return c
			}
		}
	}
	return errdefs.ErrNotFound
}

func applyAuth(sys *types.SystemContext, a *runtimeapi.AuthConfig) error {
	if a == nil {
		return nil
	}
	user, pass := a.Username, a.Password
	if a.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return fmt.Errorf("auth is not base64: %w", errdefs.ErrInvalidArgument)
		}
		u, p, ok := strings.Cut(string(b), ":")
		if !ok {
			return fmt.Errorf("auth is not base64(user:password): %w", errdefs.ErrInvalidArgument)
		}
		user, pass = u, p
	}
	if user != "" || pass != "" || a.IdentityToken != "" {
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: pass, IdentityToken: a.IdentityToken}
	}
	if a.RegistryToken != "" {
		sys.DockerBearerRegistryToken = a.RegistryToken
	}
	return nil
}

func authKey(sys *types.SystemContext) string {
	h := sha256.New()
	if a := sys.DockerAuthConfig; a != nil {
		fmt.Fprintf(h, "%q %q %q", a.Username, a.Password, a.IdentityToken)
	}
	fmt.Fprintf(h, " %q", sys.DockerBearerRegistryToken)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// pullCoalesced joins an identical pull in flight or starts one. The pull
// runs detached from any one caller and is cancelled when every caller gave up.
func (s *Service) pullCoalesced(ctx context.Context, named reference.Named, sys *types.SystemContext) (string, error) {
	key := named.String() + " " + authKey(sys)
	s.mu.Lock()
	call, ok := s.inflight[key]
	if !ok {
		pctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		call = &pullCall{done: make(chan struct{}), cancel: cancel}
		s.inflight[key] = call
		s.running++
		go func() {
			call.id, call.err = s.pull(pctx, named, sys)
			cancel(nil)
			s.mu.Lock()
			delete(s.inflight, key)
			s.running--
			if call.err != nil {
				s.dirty = true
			}
			gc := s.running == 0 && s.dirty
			if gc {
				s.dirty = false
				s.collect(pctx)
			}
			s.mu.Unlock()
			close(call.done)
		}()
	}
	call.waiters++
	s.mu.Unlock()
	select {
	case <-call.done:
		return call.id, call.err
	case <-ctx.Done():
		s.mu.Lock()
		call.waiters--
		if call.waiters == 0 {
			call.cancel(fmt.Errorf("every caller cancelled: %w", context.Cause(ctx)))
		}
		s.mu.Unlock()
		return "", fmt.Errorf("pull %s: %w", named, ctx.Err())
	}
}

// collect removes layers left by failed pulls; called with s.mu held and no
// pull running, so no layer being written is touched.
func (s *Service) collect(ctx context.Context) {
	s.layers.Lock()
	defer s.layers.Unlock()
	n, err := store.GC(s.o.Store)
	if err != nil {
		flog.From(ctx).Warn("collect layers of failed pulls", flog.KeyError, err)
	} else if n > 0 {
		s.o.Log.Info("removed layers of failed pulls", "layers", n)
	}
}

// pull copies one fully qualified reference into the store.
func (s *Service) pull(ctx context.Context, named reference.Named, sys *types.SystemContext) (string, error) {
	log := s.o.Log.With(flog.KeyImage, named.String())
	start := time.Now()
	image := named.String()
	s.o.Bus.Publish(eventsv1.SubjectImagePulling, imageEvent(image, "", "pulling", ""))
	log.Info("pulling image")
	id, err := s.copy(ctx, named, sys, log)
	if err != nil {
		s.o.Bus.Publish(eventsv1.SubjectImageFailed, imageEvent(image, "", "failed", err.Error()))
		log.Warn("pull failed", flog.KeyError, err, flog.KeyDuration, time.Since(start))
		return "", err
	}
	ev := imageEvent(image, id, "pulled", "")
	ev.GetImage().DurationMs = time.Since(start).Milliseconds()
	s.o.Bus.Publish(eventsv1.SubjectImagePulled, ev)
	log.Info("pulled image", "image_id", id, flog.KeyDuration, time.Since(start))
	return id, nil
}

func imageEvent(image, id, state, msg string) *eventsv1.Envelope {
	return &eventsv1.Envelope{Payload: &eventsv1.Envelope_Image{Image: &eventsv1.ImageEvent{
		Image: image, ImageId: id, State: state, Message: msg}}}
}

func (s *Service) copy(ctx context.Context, named reference.Named, sys *types.SystemContext, log interface {
	Debug(string, ...any)
}) (string, error) {
	policy, err := signature.NewPolicyFromFile(s.o.PolicyPath)
	if err != nil {
		return "", fmt.Errorf("read signature policy %s: %v: %w", s.o.PolicyPath, err, errdefs.ErrFailedPrecondition)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return "", fmt.Errorf("signature policy %s: %v: %w", s.o.PolicyPath, err, errdefs.ErrFailedPrecondition)
	}
	defer func() { _ = pc.Destroy() }()
	src, err := docker.NewReference(named)
	if err != nil {
		return "", fmt.Errorf("image %s: %v: %w", named, err, errdefs.ErrInvalidArgument)
	}
	dst, err := istorage.Transport.NewStoreReference(s.o.Store, named, "")
	if err != nil {
		return "", fmt.Errorf("storage reference %s: %w", named, err)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	progress := make(chan types.ProgressProperties, 16)
	stop := make(chan struct{})
	watchdogDone := make(chan struct{})
	go func() {
		defer close(watchdogDone)
		s.watch(named.String(), progress, stop, cancel, log)
	}()
	_, err = copy.Image(ctx, pc, dst, src, &copy.Options{
		SourceCtx:            sys,
		DestinationCtx:       sys,
		ReportWriter:         io.Discard,
		ProgressInterval:     200 * time.Millisecond,
		Progress:             progress,
		MaxParallelDownloads: s.o.MaxParallelDownloads,
	})
	close(stop)
	<-watchdogDone
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return "", fmt.Errorf("pull %s: %w", named, cause)
		}
		return "", fmt.Errorf("pull %s: %w", named, classify(err))
	}
	_, img, err := istorage.ResolveReference(dst)
	if err != nil {
		return "", fmt.Errorf("find pulled image %s: %w", named, err)
	}
	return img.ID, nil
}

// classify attaches an errdefs class to a containers/image error.
func classify(err error) error {
	var unauth docker.ErrUnauthorizedForCredentials
	var policyErr signature.PolicyRequirementError
	var badSig signature.InvalidSignatureError
	var ec errcode.Error
	var ecs errcode.Errors
	var netErr net.Error
	switch {
	case errors.As(err, &policyErr), errors.As(err, &badSig),
		// copy.Image wraps every policy refusal in this untyped message,
		// including verification failures of the sigstore library.
		strings.Contains(err.Error(), "Source image rejected: "):
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermissionDenied)
	case errors.As(err, &unauth):
		return fmt.Errorf("%w: %w", err, errdefs.ErrUnauthenticated)
	case errors.As(err, &ec) && ec.Code == errcode.ErrorCodeUnauthorized:
		return fmt.Errorf("%w: %w", err, errdefs.ErrUnauthenticated)
	case errors.As(err, &ec) && ec.Code == errcode.ErrorCodeDenied:
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermissionDenied)
	case errors.As(err, &ec) && isNotFoundCode(ec.Code):
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	case errors.As(err, &ecs) && len(ecs) > 0 && isNotFoundErrs(ecs):
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	case errors.As(err, &netErr):
		return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
	case strings.Contains(err.Error(), "Digest did not match"):
		// copy's digesting reader returns an untyped error for corrupt blobs.
		return fmt.Errorf("%w: %w", err, errdefs.ErrDataLoss)
	case strings.Contains(err.Error(), "is blocked in"):
		// sysregistriesv2 returns a plain error for blocked registries.
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermissionDenied)
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrUnknown)
}

func isNotFoundCode(c errcode.ErrorCode) bool {
	return c == v2.ErrorCodeManifestUnknown || c == v2.ErrorCodeNameUnknown || c == v2.ErrorCodeBlobUnknown
}

func isNotFoundErrs(errs errcode.Errors) bool {
	for _, e := range errs {
		var ec errcode.Error
		if !errors.As(e, &ec) || !isNotFoundCode(ec.Code) {
			return false
		}
	}
	return true
}

// watch cancels the pull when no bytes arrive for the progress timeout while
// a blob is being fetched (or before the first one: a stalled registry). The
// clock pauses when every blob started so far is done: storage is applying
// layers or committing the image, which reports no progress. It drains
// progress until stop is closed: copy blocks on a full channel.
func (s *Service) watch(image string, progress <-chan types.ProgressProperties, stop <-chan struct{},
	cancel context.CancelCauseFunc, log interface{ Debug(string, ...any) }) {
	t := time.NewTimer(s.o.ProgressTimeout)
	defer t.Stop()
	reset := func(run bool) {
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		if run {
			t.Reset(s.o.ProgressTimeout)
		}
	}
	var done int64
	inflight := 0
	var last time.Time
	for {
		select {
		case p := <-progress:
			switch p.Event {
			case types.ProgressEventNewArtifact:
				inflight++
			case types.ProgressEventDone:
				inflight--
				done += int64(p.OffsetUpdate)
			case types.ProgressEventRead:
				done += int64(p.OffsetUpdate)
			}
			reset(inflight > 0)
			if time.Since(last) >= time.Second {
				last = time.Now()
				ev := imageEvent(image, "", "progress", "")
				ev.GetImage().BytesDone = done
				s.o.Bus.Publish(eventsv1.SubjectImageProgress, ev)
				log.Debug("pull progress", "bytes", done)
			}
		case <-t.C:
			cancel(fmt.Errorf("%w for %s: %w", ErrProgressTimeout, s.o.ProgressTimeout, context.DeadlineExceeded))
		case <-stop:
			return
		}
	}
}
