package frame

import (
	"bytes"
	"testing"
)

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, Stdout, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, Resize, Uint32s(80, 24)); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, make([]byte, MaxPayload+1)[0], make([]byte, MaxPayload+1)); err == nil {
		t.Error("oversized frame written")
	}
	typ, p, err := Read(&b, nil)
	if err != nil || typ != Stdout || string(p) != "hello" {
		t.Fatalf("read = %d %q %v", typ, p, err)
	}
	typ, p, err = Read(&b, nil)
	v, perr := ParseUint32s(p, 2)
	if err != nil || perr != nil || typ != Resize || v[0] != 80 || v[1] != 24 {
		t.Fatalf("read resize = %d %v %v %v", typ, v, err, perr)
	}
	// A length beyond the maximum is refused before allocating.
	if _, _, err := Read(bytes.NewReader([]byte{1, 0xff, 0xff, 0xff, 0xff}), nil); err == nil {
		t.Error("oversized frame read")
	}
}
