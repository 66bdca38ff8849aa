package cri

import "google.golang.org/protobuf/proto"

func marshal(m proto.Message) ([]byte, error) { return proto.Marshal(m) }
