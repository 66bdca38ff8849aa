package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Token auth as Docker Hub, GHCR or Quay do it (the distribution token
// specification): the registry answers 401 with a Bearer challenge naming a
// token server; the client gets a JWT for the repository's scope there and
// sends it to the registry, which checks its signature (a certificate in the
// registry's rootcertbundle, sent in the token's x5c header), issuer,
// audience, expiry and access claims.
const (
	tokenService = "flotilla-test-registry"
	tokenIssuer  = "flotilla-test-token-server"
)

// tokenServer issues the registry's tokens, for Options.User/Password and
// for the refresh token it hands out (the kubelet's identity_token).
type tokenServer struct {
	user, password, refresh string

	key  *ecdsa.PrivateKey
	cert []byte // DER, self-signed
	srv  *http.Server
	addr string

	mu     sync.Mutex
	grants map[string]int
}

// Grants a token server counts in Registry.TokenGrants.
const (
	GrantBasic     = "basic"         // GET with the user's basic credentials (docker login, a kubelet username/password)
	GrantPassword  = "password"      // POST grant_type=password
	GrantRefresh   = "refresh_token" // POST grant_type=refresh_token (an identity token)
	GrantAnonymous = "anonymous"     // GET without credentials: a token without access, as Docker Hub gives for a private repository
)

func newTokenServer(user, password string) (*tokenServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuer},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	refresh := make([]byte, 16)
	rand.Read(refresh)
	ts := &tokenServer{user: user, password: password, refresh: fmt.Sprintf("%x", refresh), key: key, cert: cert, grants: map[string]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ts.addr = l.Addr().String()
	ts.srv = &http.Server{Handler: http.HandlerFunc(ts.serve), ReadHeaderTimeout: 10 * time.Second}
	go ts.srv.Serve(l)
	return ts, nil
}

func (ts *tokenServer) realm() string { return "http://" + ts.addr + "/token" }

// writeCert writes the certificate the registry trusts for tokens.
func (ts *tokenServer) writeCert(path string) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.cert}), 0o600)
}

func (ts *tokenServer) close() {
	if ts != nil {
		ts.srv.Close()
	}
}

func (ts *tokenServer) count(grant string) {
	ts.mu.Lock()
	ts.grants[grant]++
	ts.mu.Unlock()
}

// serve answers GET /token (basic credentials or none, with
// offline_token=true also a refresh token) and POST /token (OAuth2 password
// and refresh_token grants), as the distribution token specification says.
func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	var grant string
	var scopes []string
	var offline bool
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		scopes, offline = q["scope"], q.Get("offline_token") == "true"
		user, pass, ok := r.BasicAuth()
		switch {
		case !ok:
			grant = GrantAnonymous
		case user == ts.user && pass == ts.password:
			grant = GrantBasic
		}
		if q.Get("service") != tokenService {
			tokenError(w, http.StatusBadRequest, "unknown service %q", q.Get("service"))
			return
		}
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "%v", err)
			return
		}
		f := r.PostForm
		scopes = strings.Fields(f.Get("scope"))
		switch f.Get("grant_type") {
		case "password":
			offline = f.Get("access_type") == "offline"
			if f.Get("username") == ts.user && f.Get("password") == ts.password {
				grant = GrantPassword
			}
		case "refresh_token":
			if f.Get("refresh_token") == ts.refresh {
				grant = GrantRefresh
			}
		default:
			tokenError(w, http.StatusBadRequest, "unsupported grant_type %q", f.Get("grant_type"))
			return
		}
		if f.Get("service") != tokenService {
			tokenError(w, http.StatusBadRequest, "unknown service %q", f.Get("service"))
			return
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if grant == "" {
		tokenError(w, http.StatusUnauthorized, "invalid credentials")
		return
	}
	ts.count(grant)
	access := []tokenAccess{}
	if grant != GrantAnonymous {
		for _, s := range scopes {
			if a, ok := parseScope(s); ok {
				access = append(access, a)
			}
		}
	}
	tok, err := ts.sign(access)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	resp := map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339)}
	if offline && grant != GrantAnonymous {
		resp["refresh_token"] = ts.refresh
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func tokenError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}

type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// parseScope reads "repository:NAME:ACTION,ACTION"; the user gets pull and
// push on every repository.
func parseScope(s string) (tokenAccess, bool) {
	typ, rest, ok := strings.Cut(s, ":")
	i := strings.LastIndex(rest, ":")
	if !ok || typ != "repository" || i < 0 {
		return tokenAccess{}, false
	}
	a := tokenAccess{Type: typ, Name: rest[:i], Actions: []string{}}
	for _, act := range strings.Split(rest[i+1:], ",") {
		if (act == "pull" || act == "push") && !slices.Contains(a.Actions, act) {
			a.Actions = append(a.Actions, act)
		}
	}
	return a, true
}

// sign returns an ES256 JWT granting access, valid for five minutes.
func (ts *tokenServer) sign(access []tokenAccess) (string, error) {
	now := time.Now()
	jti := make([]byte, 8)
	rand.Read(jti)
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.cert)}})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": tokenIssuer, "sub": ts.user, "aud": tokenService,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": fmt.Sprintf("%x", jti), "access": access,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig), nil
}
