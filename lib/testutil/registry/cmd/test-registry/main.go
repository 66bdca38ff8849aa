// Command test-registry runs the local test registry of lib/testutil/registry until SIGTERM or
// SIGINT: it builds the test images if needed, starts docker-registry on a loopback port, pushes
// the images, writes registries.conf and policy.json into -config-dir and prints
//
//	registry: 127.0.0.1:PORT
//	registries-conf: /path/registries.conf
//	policy: /path/policy.json
//	token-realm: http://127.0.0.1:PORT/token   (with -token)
//	refresh-token: HEX                          (with -token: an identity token it accepts)
//	ready
//
// Used by hack/critest.sh and hack/bench.sh; on a signal it stops the registry and removes -dir.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"flotilla.dev/lib/testutil/registry"
)

func main() {
	dir := flag.String("dir", "", "directory for the registry's config and storage (required; removed at exit)")
	configDir := flag.String("config-dir", "", "where to write registries.conf and policy.json (default: -dir)")
	images := flag.String("images", "", `comma-separated image names of test/images/images.txt; "all" for every one including "large"; default: all but "large"`)
	imagesDir := flag.String("images-dir", "", "directory of the OCI layouts (default: build into .tools/images)")
	user := flag.String("user", "", "require basic auth with this user")
	password := flag.String("password", "", "password of -user")
	token := flag.Bool("token", false, "with -user: token auth as Docker Hub does it, from a token server in this process, instead of basic auth")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 || (*token && *user == "") {
		fmt.Fprintln(os.Stderr, "usage: test-registry -dir DIR [-config-dir DIR] [-images a,b|all] [-user U -password P [-token]]")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test-registry:", err)
		os.Exit(1)
	}
	opts := registry.Options{ConfigDir: *configDir, ImagesDir: *imagesDir, User: *user, Password: *password, Token: *token}
	switch *images {
	case "":
	case "all":
		opts.Images = registry.AllImages
	default:
		opts.Images = strings.Split(*images, ",")
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	r, err := registry.Start(abs, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test-registry:", err)
		os.Exit(1)
	}
	fmt.Printf("registry: %s\nregistries-conf: %s\npolicy: %s\n", r.Addr, r.RegistriesConf, r.PolicyJSON)
	if *token {
		fmt.Printf("token-realm: %s\nrefresh-token: %s\n", r.TokenRealm(), r.RefreshToken())
	}
	fmt.Println("ready")
	<-sigs
	if err := r.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "test-registry: stop:", err)
		os.Exit(1)
	}
}
