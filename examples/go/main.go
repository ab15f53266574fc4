// The driver protocol loop (docs/protocol.md in gsp-conformance): one JSON request per line on
// stdin, one JSON answer per line on stdout, payloads as binary frames after their line once the
// start agreed on them (else base64). It drives the Service of memory.go; nothing here changes
// when you bring your own service.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const (
	version  = 1
	frames   = 1         // the binary frames this driver speaks, accepted when the start offers them
	maxFrame = 256 << 20 // the longest frame either end takes
)

// framed: payloads travel as binary frames, since this driver's answer to the start accepted them.
var framed bool

// frame is a read's bytes: sent as a frame after the answer's line once agreed, else as base64.
type frame []byte

var trace = flag.Bool("trace", false, "log each request to stderr (secret pairs masked)")

type request struct {
	Seq     *int64           `json:"seq"`
	Op      string           `json:"op"`
	Version int              `json:"version"`
	Frames  int              `json:"frames"`
	Options map[string]any   `json:"options"`
	Path    *string          `json:"path"`
	Prefix  *string          `json:"prefix"`
	Data    json.RawMessage  `json:"data"`
	Object  *json.RawMessage `json:"object"`
	Pairs   map[string]any   `json:"pairs"`
	Secrets []string         `json:"secrets"`
}

type wireObject struct {
	Path         string         `json:"path"`
	Mode         []string       `json:"mode"`
	Size         *int64         `json:"size"`
	AppendOffset *int64         `json:"append_offset"`
	Etag         *string        `json:"etag"`
	ContentType  *string        `json:"content_type"`
	System       map[string]any `json:"system"`
	Handle       any            `json:"handle"`
}

func main() {
	flag.Parse()
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	var service Service
	for {
		line, err := in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			answer, status := handle(line, in, &service)
			if answer != nil {
				send(out, answer)
			}
			if status >= 0 {
				os.Exit(status)
			}
		}
		if err == io.EOF {
			return
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "go-memory: reading stdin:", err)
			os.Exit(1)
		}
	}
}

// send writes an answer's line, and a read's bytes as the frame after it once agreed.
func send(out *bufio.Writer, answer map[string]any) {
	payload, isFrame := answer["result"].(frame)
	asFrame := isFrame && framed && len(payload) <= maxFrame // a longer payload goes as base64
	if asFrame {
		answer["result"] = map[string]int{"$bytes": len(payload)}
	} else if isFrame {
		answer["result"] = base64.StdEncoding.EncodeToString(payload)
	}
	encoded, _ := json.Marshal(answer)
	out.Write(append(encoded, '\n'))
	if asFrame {
		out.Write(payload)
		out.WriteByte('\n')
	}
	out.Flush()
}

// handle answers one line; a status of 0 or more ends the process with it.
func handle(line []byte, in *bufio.Reader, service *Service) (map[string]any, int) {
	var req request
	decoder := json.NewDecoder(bytes.NewReader(line))
	decoder.UseNumber()
	if err := decoder.Decode(&req); err != nil {
		return refusal(nil, "malformed request: "+err.Error()), -1
	}
	// the frame first: it is on the stream whatever the request is
	data, err := readFrame(req.Data, in)
	if err != nil { // the stream is out of step: nothing after this can be read
		return refusal(req.Seq, "malformed frame: "+err.Error()), 2
	}
	if *trace {
		logRequest(req)
	}
	switch {
	case req.Op == "stop":
		return nil, 0
	case req.Op == "start" && req.Version != version:
		return refusal(req.Seq, fmt.Sprintf("protocol version %d is not supported (this driver speaks %d)", req.Version, version)), 2
	case req.Op == "start":
		built, err := NewService(decode(req.Options).(map[string]any))
		if err != nil {
			return map[string]any{"seq": req.Seq, "error": map[string]any{"class": "DriverError", "message": err.Error()}}, 2
		}
		*service = built
		caps := built.Capabilities()
		declared := map[string]any{"operations": caps.Operations, "pairs": caps.Pairs, "limits": caps.Limits, "features": nonNil(caps.Features)}
		result := map[string]any{"version": version, "name": built.Name(), "capabilities": declared}
		if req.Frames == frames {
			result["frames"], framed = frames, true
		}
		return map[string]any{"seq": req.Seq, "result": result}, -1
	case *service == nil:
		return refusal(req.Seq, "the first request must be start, not "+req.Op), -1
	}
	result, err := call(*service, req, data)
	if _, malformed := err.(malformedError); malformed {
		return refusal(req.Seq, err.Error()), -1
	}
	if err != nil {
		return map[string]any{"seq": req.Seq, "error": errorJSON(err)}, -1
	}
	return map[string]any{"seq": req.Seq, "result": result}, -1
}

type malformedError string

func (e malformedError) Error() string { return string(e) }

// readFrame reads the frame a request's data announces ({"$bytes": N}: N bytes and a newline
// follow its line); nil when the data is no frame marker.
func readFrame(raw json.RawMessage, in *bufio.Reader) ([]byte, error) {
	var marker map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &marker) != nil || marker["$bytes"] == nil {
		return nil, nil
	}
	size, err := strconv.ParseInt(string(marker["$bytes"]), 10, 64)
	if err != nil || len(marker) != 1 || size < 0 || size > maxFrame {
		return nil, fmt.Errorf(`a frame's marker must be {"$bytes": N} alone, N an integer from 0 to %d`, maxFrame)
	}
	if !framed {
		return nil, fmt.Errorf("a frame, but the start agreed on base64 payloads")
	}
	found := make([]byte, size+1)
	if got, err := io.ReadFull(in, found); err != nil {
		return nil, fmt.Errorf("the input ended %d bytes into a %d-byte frame", got, size)
	}
	if found[size] != '\n' {
		return nil, fmt.Errorf("a %d-byte frame is followed by byte 0x%02x, not the newline that ends it", size, found[size])
	}
	return found[:size], nil
}

func call(s Service, req request, data []byte) (any, error) {
	pairs := Pairs{}
	if req.Pairs != nil {
		pairs = decode(req.Pairs).(map[string]any)
	}
	appender, canAppend := s.(Appender)
	switch req.Op {
	case "write", "read", "stat", "delete", "create_append":
		if req.Path == nil {
			return nil, malformedError(req.Op + " needs a path")
		}
	case "list":
		if req.Prefix == nil {
			return nil, malformedError("list needs a prefix")
		}
	case "write_append", "commit_append":
		if !canAppend {
			return nil, Fail("NotImplemented", req.Op, "", "operation "+req.Op+": not implemented")
		}
	default:
		return nil, malformedError("unknown op " + req.Op)
	}
	if (req.Op == "write" || req.Op == "write_append") && data == nil {
		var text string
		if json.Unmarshal(req.Data, &text) != nil {
			return nil, malformedError(req.Op + " needs data: base64 text or a frame")
		}
		decoded, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, malformedError("data is not base64: " + err.Error())
		}
		data = decoded
	}
	switch req.Op {
	case "write":
		return objectOf(s.Write(*req.Path, data, pairs))
	case "read":
		read, err := s.Read(*req.Path, pairs)
		if err != nil {
			return nil, err
		}
		return frame(read), nil
	case "stat":
		return objectOf(s.Stat(*req.Path, pairs))
	case "delete":
		return nil, s.Delete(*req.Path, pairs)
	case "list":
		found, err := s.List(*req.Prefix, pairs)
		if err != nil {
			return nil, err
		}
		listed := []wireObject{}
		for _, o := range found {
			listed = append(listed, toWire(o))
		}
		return listed, nil
	case "create_append":
		if !canAppend {
			return nil, Fail("NotImplemented", req.Op, *req.Path, "operation create_append: not implemented")
		}
		return objectOf(appender.CreateAppend(*req.Path, pairs))
	}
	o, err := fromWire(req.Object)
	if err != nil {
		return nil, err
	}
	if req.Op == "commit_append" {
		return nil, appender.CommitAppend(o, pairs)
	}
	written, err := appender.WriteAppend(o, data, pairs)
	if err != nil {
		return nil, err
	}
	var moved any
	if o != nil {
		moved = toWire(o)
	}
	return map[string]any{"written": written, "object": moved}, nil
}

func objectOf(o *Object, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return toWire(o), nil
}

func toWire(o *Object) wireObject {
	return wireObject{o.Path, o.Mode.Names(), o.Size, o.AppendOffset, o.Etag, o.ContentType, encode(nonNilMap(o.System)).(map[string]any), o.Handle}
}

func fromWire(raw *json.RawMessage) (*Object, error) {
	if raw == nil || string(*raw) == "null" {
		return nil, nil
	}
	var w wireObject
	decoder := json.NewDecoder(bytes.NewReader(*raw))
	decoder.UseNumber()
	if err := decoder.Decode(&w); err != nil {
		return nil, malformedError("object: " + err.Error())
	}
	mode := Mode(0)
	for _, name := range w.Mode {
		known := false
		for i, n := range ModeNames {
			if n == name {
				mode, known = mode|1<<i, true
			}
		}
		if !known {
			return nil, malformedError("object: unknown mode name " + name)
		}
	}
	system, _ := decode(nonNilMap(w.System)).(map[string]any)
	return &Object{w.Path, mode, w.Size, w.AppendOffset, w.Etag, w.ContentType, system, w.Handle}, nil
}

func errorJSON(err error) map[string]any {
	e, typed := err.(*Error)
	if !typed { // a raw error: the harness reports it as untyped, and the specs fail it
		return map[string]any{"class": fmt.Sprintf("%T", err), "message": err.Error()}
	}
	found := map[string]any{"class": e.Class, "message": e.Message, "op": e.Op, "path": e.Path}
	if e.RetryAfter != nil {
		found["retry_after"] = *e.RetryAfter
	}
	if e.Attributes != nil {
		found["attributes"] = encode(e.Attributes)
	}
	return found
}

func refusal(seq *int64, message string) map[string]any {
	return map[string]any{"seq": seq, "error": map[string]any{"class": "ProtocolError", "message": message}}
}

// decode turns {"base64": "..."} values into []byte, all the way down.
func decode(value any) any {
	switch v := value.(type) {
	case map[string]any:
		if text, ok := v["base64"].(string); ok && len(v) == 1 {
			if raw, err := base64.StdEncoding.DecodeString(text); err == nil {
				return raw
			}
		}
		found := map[string]any{}
		for k, item := range v {
			found[k] = decode(item)
		}
		return found
	case []any:
		found := make([]any, len(v))
		for i, item := range v {
			found[i] = decode(item)
		}
		return found
	case nil:
		return map[string]any{}
	}
	return value
}

// encode turns []byte values into {"base64": "..."}, all the way down.
func encode(value any) any {
	switch v := value.(type) {
	case []byte:
		return map[string]any{"base64": base64.StdEncoding.EncodeToString(v)}
	case map[string]any:
		found := map[string]any{}
		for k, item := range v {
			found[k] = encode(item)
		}
		return found
	case []any:
		found := make([]any, len(v))
		for i, item := range v {
			found[i] = encode(item)
		}
		return found
	}
	return value
}

func logRequest(req request) {
	shown := []string{}
	for name, value := range req.Pairs {
		for _, secret := range req.Secrets {
			if name == secret {
				value = "***"
			}
		}
		shown = append(shown, fmt.Sprintf("%s=%v", name, value))
	}
	fmt.Fprintf(os.Stderr, "go-memory: %s %v %s\n", req.Op, deref(req.Path, req.Prefix), strings.Join(shown, " "))
}

func deref(paths ...*string) string {
	for _, p := range paths {
		if p != nil {
			return *p
		}
	}
	return ""
}

func nonNil(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
