package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"flotilla.dev/lib/testutil/registry"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/signature/signer"
	"go.podman.io/image/v5/signature/sigstore"
	"go.podman.io/image/v5/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const sigstoreAttachments = "default-docker:\n  use-sigstore-attachments: true\n"

// newSigner generates a sigstore key pair in dir and returns a signer and the public key's path.
func newSigner(t *testing.T, dir, name string) (*signer.Signer, string) {
	t.Helper()
	pass := []byte("flotilla-test")
	kp, err := sigstore.GenerateKeyPair(pass)
	must(t, err)
	priv, pub := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	must(t, os.WriteFile(priv, kp.PrivateKey, 0o600))
	must(t, os.WriteFile(pub, kp.PublicKey, 0o644))
	s, err := sigstore.NewSigner(sigstore.WithPrivateKeyFile(priv, pass))
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s, pub
}

// copyImage copies between two references of the test registry, signing with s when set.
func copyImage(t *testing.T, regDir, from, to string, s *signer.Signer) {
	t.Helper()
	ctx := context.Background()
	sys := &types.SystemContext{
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue,
		RegistriesDirPath:           regDir,
		SystemRegistriesConfPath:    filepath.Join(regDir, "none.conf"),
		BlobInfoCacheDir:            regDir,
		AuthFilePath:                filepath.Join(regDir, "none.json"),
	}
	src, err := docker.ParseReference("//" + from)
	must(t, err)
	dst, err := docker.ParseReference("//" + to)
	must(t, err)
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	must(t, err)
	defer pc.Destroy()
	opts := &copy.Options{SourceCtx: sys, DestinationCtx: sys}
	if s != nil {
		opts.Signers = []*signer.Signer{s}
	}
	_, err = copy.Image(ctx, pc, dst, src, opts)
	must(t, err)
}

func TestSigstorePolicy(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	keys := t.TempDir()
	regD := filepath.Join(keys, "registries.d")
	must(t, os.MkdirAll(regD, 0o755))
	must(t, os.WriteFile(filepath.Join(regD, "default.yaml"), []byte(sigstoreAttachments), 0o644))
	must(t, os.WriteFile(filepath.Join(regD, "none.conf"), nil, 0o644))
	good, goodPub := newSigner(t, keys, "good")
	other, _ := newSigner(t, keys, "other")

	src := reg.Local("docker.io/library/busybox:latest")
	signed := reg.Addr + "/signed/busybox:1"
	copyImage(t, regD, src, signed, good)
	copyImage(t, regD, src, reg.Addr+"/signed/unsigned:1", nil)
	copyImage(t, regD, src, reg.Addr+"/signed/otherkey:1", other)
	copyImage(t, regD, src, reg.Addr+"/rejected/busybox:1", nil)
	// The signed image under another tag: its signature names busybox:1.
	copyImage(t, regD, signed, reg.Addr+"/signed/busybox:2", nil)

	policy := fmt.Sprintf(`{"default": [{"type": "insecureAcceptAnything"}],
 "transports": {"docker": {%q: [{"type": "sigstoreSigned", "keyPath": %q, "signedIdentity": {"type": "matchRepoDigestOrExact"}}],
                          %q: [{"type": "reject"}]}}}`, reg.Addr+"/signed", goodPub, reg.Addr+"/rejected")
	e := newEnv(t, reg, envOpts{policy: policy, registriesD: sigstoreAttachments})
	ctx := ctxT(t)

	for _, ref := range []string{reg.Addr + "/signed/unsigned:1", reg.Addr + "/signed/otherkey:1", reg.Addr + "/signed/busybox:2", reg.Addr + "/rejected/busybox:1"} {
		_, err := e.pull(ctx, ref, nil)
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("pull %s: %v, want PermissionDenied", ref, err)
		}
	}
	if l, i := e.stored(); l != 0 || i != 0 {
		t.Errorf("refused pulls stored %d layers, %d images", l, i)
	}
	id, err := e.pull(ctx, signed, nil)
	must(t, err)
	if img := e.status(ctx, signed); img.GetId() != id {
		t.Errorf("signed image status %v", img)
	}
	// Outside the policy's scope anything is accepted.
	_, err = e.pull(ctx, "busybox", nil)
	must(t, err)
	if _, err := e.pull(ctx, reg.Addr+"/signed/unsigned:1", nil); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("unsigned pull error does not say why: %v", err)
	}
}
