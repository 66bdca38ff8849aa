package proxy

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// frame is a message criproxy forwards without decoding it.
type frame struct{ data []byte }

// codec passes frames through untouched and (un)marshals protobuf messages
// for the few RPCs criproxy answers itself. It keeps the "proto" name so the
// content type on the wire does not change.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *frame:
		return m.data, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("codec: cannot marshal %T", v)
}

func (codec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case *frame:
		m.data = append(m.data[:0], data...)
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("codec: cannot unmarshal into %T", v)
}
