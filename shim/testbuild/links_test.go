package testbuild

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// buildFlags are shim/build.sh's compiler flags; the objects are compiled
// with -c instead of linked, to read what each one leaves undefined.
func buildFlags(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "exec" && strings.Contains(f[1], "CC") {
			var flags []string
			for _, a := range f[2:] {
				if strings.HasPrefix(a, "-") && a != "-o" && a != "-static" {
					flags = append(flags, a)
				}
			}
			return flags
		}
	}
	t.Fatal("build.sh: no `exec ${CC:-cc} ...` line")
	return nil
}

// readList reads shim/c/LIBC: one symbol a line, # comments.
func readList(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var syms []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" && !strings.HasPrefix(s, "#") {
			syms = append(syms, s)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return syms
}

// libcSymbols compiles every shim/c/*.c to an object and returns the symbols
// they leave undefined that no other object defines: what comes from libc.
func libcSymbols(t *testing.T, dir string) []string {
	srcs, err := filepath.Glob(filepath.Join(dir, "c", "*.c"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no shim sources in %s: %v", dir, err)
	}
	out := t.TempDir()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	flags := buildFlags(t, dir)
	undefined, defined := map[string]bool{}, map[string]bool{}
	for _, src := range srcs {
		obj := filepath.Join(out, strings.TrimSuffix(filepath.Base(src), ".c")+".o")
		args := append(slices.Clip(flags), "-c", "-o", obj, src)
		if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, b)
		}
		f, err := elf.Open(obj)
		if err != nil {
			t.Fatal(err)
		}
		syms, err := f.Symbols()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", obj, err)
		}
		for _, s := range syms {
			if s.Name == "" || elf.ST_BIND(s.Info) == elf.STB_LOCAL {
				continue
			}
			if s.Section == elf.SHN_UNDEF {
				undefined[s.Name] = true
			} else {
				defined[s.Name] = true
			}
		}
	}
	var libc []string
	for s := range undefined {
		if !defined[s] {
			libc = append(libc, s)
		}
	}
	slices.Sort(libc)
	return libc
}

// TestShimLinksItsList keeps issue 6's list of what the shim links: the libc
// symbols its objects use must be exactly shim/c/LIBC, none of them may need
// a libc part loaded at run time (the shim is static) or a second thread,
// and the built binary must be static.
func TestShimLinksItsList(t *testing.T) {
	if _, err := exec.LookPath("cc"); err != nil && os.Getenv("CC") == "" {
		t.Skip("no C compiler")
	}
	dir, err := shimDir()
	if err != nil {
		t.Fatal(err)
	}
	got := libcSymbols(t, dir)
	want := readList(t, filepath.Join(dir, "c", "LIBC"))
	var added, gone []string
	for _, s := range got {
		if !slices.Contains(want, s) {
			added = append(added, s)
		}
	}
	for _, s := range want {
		if !slices.Contains(got, s) {
			gone = append(gone, s)
		}
	}
	if len(added) > 0 || len(gone) > 0 {
		t.Errorf("the shim's libc symbols differ from shim/c/LIBC: new %v, no longer used %v (update the list if the change is meant)", added, gone)
	}
	// What static glibc cannot serve without loading modules at run time,
	// and threads: the shim is one thread around one epoll loop.
	forbidden := []string{"getpw", "getgr", "getspnam", "initgroups", "getaddrinfo", "gethostby", "getservby",
		"getnameinfo", "dlopen", "iconv_open", "setlocale", "newlocale", "pthread_create"}
	for _, s := range got {
		for _, p := range forbidden {
			if strings.HasPrefix(s, p) {
				t.Errorf("the shim uses %s: static glibc loads NSS, iconv or locale modules for it at run time, or it starts a thread", s)
			}
		}
	}

	bin := filepath.Join(t.TempDir(), "flotilla-shim")
	if err := Build(bin); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: it is not linked statically", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
}
