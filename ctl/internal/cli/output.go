package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// render prints v as json or yaml, or calls table for the table format.
func render(w io.Writer, format string, v any, table func(*tabwriter.Writer)) error {
	switch format {
	case "json", "yaml":
		var data []byte
		var err error
		if m, ok := v.(proto.Message); ok {
			data, err = protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: false}.Marshal(m)
		} else {
			data, err = json.MarshalIndent(v, "", "  ")
		}
		if err != nil {
			return err
		}
		if format == "yaml" {
			if data, err = yaml.JSONToYAML(data); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintln(w, string(data))
		return err
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
	return fmt.Errorf("unknown output format %q (want table, json or yaml)", format)
}

func short(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}
