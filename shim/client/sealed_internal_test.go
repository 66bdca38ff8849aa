package client

import "testing"

func TestCopiesItself(t *testing.T) {
	for _, c := range []struct {
		version string
		want    bool
	}{
		{"runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n", true},
		{"runc version 1.0.0-rc93\n", true},
		{"runc version 1.2.0\ncommit: v1.2.0-0-g0123456\n", false},
		{"runc version 1.10.1\n", false},
		{"runc version 2.0.0\n", false},
		{"runsc version release-20230605.0\nspec: 1.1.0-rc.1\n", false},
		{"crun version 1.8.1\n", false},
		{"runc version unknown\n", false},
		{"", false},
	} {
		got, why := copiesItself(c.version)
		if got != c.want || (!got && why == "") {
			t.Errorf("copiesItself(%q) = %v, %q; want %v (and a reason when false)", c.version, got, why, c.want)
		}
	}
}
