package caps

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The numbers are the kernel's.
func TestNumbersAreTheKernels(t *testing.T) {
	for name, want := range map[string]int{
		"CAP_CHOWN": unix.CAP_CHOWN, "CAP_KILL": unix.CAP_KILL, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
		"CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
		"CAP_AUDIT_READ": unix.CAP_AUDIT_READ, "CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
	} {
		if n, ok := Number(name); !ok || n != want {
			t.Errorf("Number(%s) = %d, %v; want %d", name, n, ok, want)
		}
		if Name(want) != name {
			t.Errorf("Name(%d) = %q, want %s", want, Name(want), name)
		}
	}
	if Count != unix.CAP_LAST_CAP+1 {
		t.Errorf("Count = %d, x/sys knows %d capabilities", Count, unix.CAP_LAST_CAP+1)
	}
	if _, ok := Number("cap_chown"); ok {
		t.Error("Number accepts lower case")
	}
	if Name(-1) != "" || Name(Count) != "" {
		t.Error("Name of an unknown number is not empty")
	}
}
