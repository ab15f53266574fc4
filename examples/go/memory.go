// The service: objects in memory. To certify your go-storage service, replace this file with one
// whose NewService returns your service (built from the options the harness sends, such as a
// backend's bucket and endpoint_url), its errors wrapped in the taxonomy of storage.go.
package main

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
)

var broken = flag.String("broken", "", "break one rule on purpose: delete-missing (delete of a path never written fails)")

const mib = 1024 * 1024

var (
	sseWritePairs = []string{
		"server_side_encryption", "server_side_encryption_aws_kms_key_id", "server_side_encryption_context",
		"server_side_encryption_bucket_key_enabled", "server_side_encryption_customer_algorithm",
		"server_side_encryption_customer_key",
	}
	sseCPairs = []string{"server_side_encryption_customer_algorithm", "server_side_encryption_customer_key"}
)

type entry struct {
	data        []byte
	mode        Mode
	contentType *string
	system      map[string]any
	keyMD5      string // set for SSE-C objects: reads must present the same key
}

type memory struct {
	mu      sync.Mutex
	objects map[string]*entry
	seen    map[string]bool // paths ever written, for the broken variant
	caps    Capabilities
}

// NewService builds the service from the start's options.
func NewService(options map[string]any) (Service, error) {
	limit := int64(8 * mib)
	for name, value := range options {
		if name != "append_size_maximum" {
			return nil, fmt.Errorf("unknown option %q (known: append_size_maximum)", name)
		}
		n, err := number(value)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("option append_size_maximum must be a positive integer, not %v", value)
		}
		limit = n
	}
	m := &memory{objects: map[string]*entry{}, seen: map[string]bool{}}
	m.caps = Capabilities{
		Operations: []string{"write", "read", "stat", "delete", "list", "create_append", "write_append", "commit_append"},
		Pairs: map[string][]string{
			"write": append([]string{"content_type"}, sseWritePairs...),
			"read":  append([]string{"offset", "size"}, sseCPairs...),
			"stat":  sseCPairs,
		},
		Limits: map[string]int64{"append_size_maximum": limit},
	}
	return m, nil
}

func (m *memory) Name() string               { return "go-memory" }
func (m *memory) Capabilities() Capabilities { return m.caps }

func (m *memory) Write(path string, data []byte, pairs Pairs) (*Object, error) {
	if err := m.checkPairs("write", pairs, path); err != nil {
		return nil, err
	}
	key, err := customerKey(pairs, "write", path)
	if err != nil {
		return nil, err
	}
	system, err := managedEncryption(pairs, "write", path)
	if err != nil {
		return nil, err
	}
	e := &entry{data: append([]byte{}, data...), mode: ModeRead, system: system}
	if ct, ok := pairs["content_type"].(string); ok {
		e.contentType = &ct
	}
	if key != nil {
		e.keyMD5 = keyMD5(key)
		system["server_side_encryption_customer_algorithm"] = "AES256"
		system["server_side_encryption_customer_key_md5"] = e.keyMD5
	}
	m.mu.Lock()
	m.objects[path] = e
	m.seen[path] = true
	m.mu.Unlock()
	return object(path, e), nil
}

func (m *memory) Read(path string, pairs Pairs) ([]byte, error) {
	if err := m.checkPairs("read", pairs, path); err != nil {
		return nil, err
	}
	e, err := m.unlocked(path, "read", pairs)
	if err != nil {
		return nil, err
	}
	offset, size := int64(0), int64(-1)
	if v, ok := pairs["offset"]; ok {
		offset, _ = number(v)
	}
	if v, ok := pairs["size"]; ok {
		if size, _ = number(v); size < 0 {
			return nil, Fail("RestrictionDissatisfied", "read", path, "offset and size must not be negative")
		}
	}
	if offset < 0 {
		return nil, Fail("RestrictionDissatisfied", "read", path, "offset and size must not be negative")
	}
	total := int64(len(e.data))
	start, end := clamp(offset, total), total
	if size >= 0 {
		end = clamp(offset+size, total)
	}
	if end < start {
		end = start
	}
	return append([]byte{}, e.data[start:end]...), nil
}

func (m *memory) Stat(path string, pairs Pairs) (*Object, error) {
	if err := m.checkPairs("stat", pairs, path); err != nil {
		return nil, err
	}
	e, err := m.unlocked(path, "stat", pairs)
	if err != nil {
		return nil, err
	}
	return object(path, e), nil
}

func (m *memory) Delete(path string, pairs Pairs) error {
	if err := m.checkPairs("delete", pairs, path); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if *broken == "delete-missing" && !m.seen[path] {
		return Fail("ObjectNotExist", "delete", path, "no such object")
	}
	delete(m.objects, path)
	return nil
}

func (m *memory) List(prefix string, pairs Pairs) ([]*Object, error) {
	if err := m.checkPairs("list", pairs, prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	paths := []string{}
	for path := range m.objects {
		if strings.HasPrefix(path, prefix) {
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	found := []*Object{}
	for _, path := range paths {
		found = append(found, object(path, m.objects[path]))
	}
	return found, nil
}

func (m *memory) CreateAppend(path string, pairs Pairs) (*Object, error) {
	if err := m.checkPairs("create_append", pairs, path); err != nil {
		return nil, err
	}
	e := &entry{data: []byte{}, mode: ModeRead | ModeAppend, system: map[string]any{}}
	m.mu.Lock()
	m.objects[path] = e
	m.seen[path] = true
	m.mu.Unlock()
	o := object(path, e)
	zero := int64(0)
	o.AppendOffset = &zero
	return o, nil
}

func (m *memory) WriteAppend(o *Object, data []byte, pairs Pairs) (int64, error) {
	if err := m.checkPairs("write_append", pairs, ""); err != nil {
		return 0, err
	}
	if err := checkAppend("write_append", o); err != nil {
		return 0, err
	}
	if limit := m.caps.Limits["append_size_maximum"]; int64(len(data)) > limit {
		message := fmt.Sprintf("size limit exceeded: %d > append_size_maximum %d", len(data), limit)
		return 0, Fail("RestrictionDissatisfied", "write_append", "", message)
	}
	m.mu.Lock()
	e, ok := m.objects[o.Path]
	if !ok {
		e = &entry{data: []byte{}, mode: ModeRead | ModeAppend, system: map[string]any{}}
		m.objects[o.Path] = e
	}
	e.data = append(e.data, data...)
	size := int64(len(e.data))
	m.mu.Unlock()
	o.AppendOffset, o.Size = &size, &size
	return int64(len(data)), nil
}

func (m *memory) CommitAppend(o *Object, pairs Pairs) error {
	if err := m.checkPairs("commit_append", pairs, ""); err != nil {
		return err
	}
	return checkAppend("commit_append", o)
}

// checkPairs refuses every pair the operation does not declare: never ignore one silently.
func (m *memory) checkPairs(op string, pairs Pairs, path string) error {
	for name := range pairs {
		if !contains(m.caps.Pairs[op], name) {
			return Fail("PairUnsupported", op, path, "pair unsupported: "+name).With("pair", name)
		}
	}
	return nil
}

// unlocked is the entry at path, after checking the SSE-C key it was written with.
func (m *memory) unlocked(path, op string, pairs Pairs) (*entry, error) {
	key, err := customerKey(pairs, op, path)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	e, ok := m.objects[path]
	m.mu.Unlock()
	switch {
	case !ok:
		return nil, Fail("ObjectNotExist", op, path, "no such object")
	case e.keyMD5 != "" && key == nil:
		return nil, Fail("PermissionDenied", op, path, "object needs its customer key")
	case e.keyMD5 != "" && keyMD5(key) != e.keyMD5:
		return nil, Fail("PermissionDenied", op, path, "wrong customer key")
	case e.keyMD5 == "" && key != nil:
		return nil, Fail("RestrictionDissatisfied", op, path, "object is not encrypted with a customer key")
	}
	return e, nil
}

func checkAppend(op string, o *Object) error {
	if o == nil || o.Mode&ModeAppend == 0 {
		actual := Mode(0)
		if o != nil {
			actual = o.Mode
		}
		message := "object mode invalid, expected append, actual " + strings.Join(actual.Names(), "|")
		return Fail("ObjectModeInvalid", op, "", message).With("expected", ModeAppend.Names()).With("actual", actual.Names())
	}
	return nil
}

// customerKey is the validated SSE-C key of a call, or nil; it refuses what S3 would refuse.
func customerKey(pairs Pairs, op, path string) ([]byte, error) {
	algorithm, hasAlgorithm := pairs["server_side_encryption_customer_algorithm"]
	key, hasKey := pairs["server_side_encryption_customer_key"]
	switch {
	case !hasAlgorithm && !hasKey:
		return nil, nil
	case !hasAlgorithm:
		return nil, Fail("PairRequired", op, path, "pair required: server_side_encryption_customer_algorithm").
			With("keys", []string{"server_side_encryption_customer_algorithm"})
	case algorithm != "AES256":
		return nil, Fail("RestrictionDissatisfied", op, path, fmt.Sprintf("customer algorithm must be AES256, not %v", algorithm))
	}
	raw, ok := key.([]byte)
	if !ok || len(raw) != 32 {
		message := fmt.Sprintf("invalid server-side encryption customer key: %d bytes, need 32", len(raw))
		return nil, Fail("RestrictionDissatisfied", op, path, message)
	}
	return raw, nil
}

// managedEncryption validates the SSE-S3 and SSE-KMS pairs of a write, as the system metadata they produce.
func managedEncryption(pairs Pairs, op, path string) (map[string]any, error) {
	algorithm, hasAlgorithm := pairs["server_side_encryption"]
	kmsOnly := []string{}
	for name := range pairs {
		if strings.HasPrefix(name, "server_side_encryption_") && !contains(sseCPairs, name) {
			kmsOnly = append(kmsOnly, name)
		}
	}
	sort.Strings(kmsOnly)
	system := map[string]any{}
	switch {
	case !hasAlgorithm && len(kmsOnly) > 0:
		return nil, Fail("PairRequired", op, path, "pair required: server_side_encryption").
			With("keys", []string{"server_side_encryption"})
	case !hasAlgorithm:
		return system, nil
	case algorithm != "AES256" && algorithm != "aws:kms":
		return nil, Fail("RestrictionDissatisfied", op, path, "server_side_encryption must be one of ['AES256', 'aws:kms']")
	}
	if _, ok := pairs["server_side_encryption_customer_algorithm"]; ok {
		return nil, Fail("RestrictionDissatisfied", op, path, "SSE-C cannot be combined with server_side_encryption")
	}
	if algorithm == "AES256" && len(kmsOnly) > 0 {
		return nil, Fail("RestrictionDissatisfied", op, path, kmsOnly[0]+" needs server_side_encryption=aws:kms")
	}
	system["server_side_encryption"] = algorithm
	for _, name := range kmsOnly {
		system[name] = pairs[name]
	}
	return system, nil
}

func object(path string, e *entry) *Object {
	size := int64(len(e.data))
	system := map[string]any{}
	for k, v := range e.system {
		system[k] = v
	}
	return &Object{Path: path, Mode: e.mode, Size: &size, ContentType: e.contentType, System: system}
}

func keyMD5(key []byte) string {
	sum := md5.Sum(key)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func number(value any) (int64, error) {
	switch v := value.(type) {
	case json.Number:
		return v.Int64()
	case string:
		var n json.Number = json.Number(v)
		return n.Int64()
	}
	return 0, fmt.Errorf("not a number: %v", value)
}

func clamp(n, total int64) int64 {
	if n > total {
		return total
	}
	return n
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
