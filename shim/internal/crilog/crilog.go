// Package crilog writes a container's output in the CRI log format the
// kubelet reads:
//
//	2016-10-06T00:17:09.669794202Z stdout F a whole line
//	2016-10-06T00:17:09.669794202Z stderr P the first part of a long line
//
// A line longer than the line size is split into P (partial) entries ended
// by an F entry. Output that ends without a newline is written as F.
package crilog

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// DefaultLineSize is the longest line written as a single entry.
const DefaultLineSize = 16 << 10

// Writer appends entries to the log file; stdout and stderr copiers share
// one Writer. Each entry is one write(2) to an O_APPEND file.
type Writer struct {
	mu   sync.Mutex
	path string
	f    *os.File // nil when path is ""
	buf  []byte
	now  func() time.Time
}

// Open opens (creating, 0640) path for appending; "" discards everything.
func Open(path string) (*Writer, error) {
	w := &Writer{path: path, now: time.Now}
	if err := w.Reopen(); err != nil {
		return nil, err
	}
	return w, nil
}

// Reopen closes the file and opens path again (after log rotation).
func (w *Writer) Reopen() error {
	if w.path == "" {
		return nil
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	w.mu.Lock()
	old := w.f
	w.f = f
	w.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Entry writes one entry; partial selects P over F. line has no newline.
func (w *Writer) Entry(stream string, partial bool, line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	tag := " F "
	if partial {
		tag = " P "
	}
	b := w.now().UTC().AppendFormat(w.buf[:0], time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, tag...)
	b = append(b, line...)
	b = append(b, '\n')
	w.buf = b
	_, err := w.f.Write(b)
	return err
}

// Copy reads r until EOF (or an error such as EIO from a pty master) and
// writes its lines as entries of stream. tee, when not nil, gets every
// chunk as read (for attached clients). lineSize <= 0 means DefaultLineSize.
func (w *Writer) Copy(stream string, r io.Reader, lineSize int, tee func([]byte)) error {
	if lineSize <= 0 {
		lineSize = DefaultLineSize
	}
	if lineSize < 16 {
		lineSize = 16 // bufio's minimum
	}
	br := bufio.NewReaderSize(&teeReader{r: r, tee: tee}, lineSize)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if werr := w.Entry(stream, false, line[:len(line)-1]); werr != nil {
				return werr
			}
		case errors.Is(err, bufio.ErrBufferFull):
			if werr := w.Entry(stream, true, line); werr != nil {
				return werr
			}
		default:
			if len(line) > 0 {
				if werr := w.Entry(stream, false, line); werr != nil {
					return werr
				}
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

type teeReader struct {
	r   io.Reader
	tee func([]byte)
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 && t.tee != nil {
		t.tee(p[:n])
	}
	return n, err
}
