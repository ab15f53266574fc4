// The interface a service implements, shaped like go-storage's Storager and Appender, and the
// error taxonomy it reports failures in. Nothing here knows the protocol: see main.go.
package main

import "fmt"

// Pairs are an operation's options by GSP snake_case name. Numbers arrive as json.Number, bytes
// (an SSE-C key) as []byte, anything else as JSON decodes it.
type Pairs map[string]any

// Mode is an object's mode, with the GSP-25 bit values.
type Mode uint32

const (
	ModeDir Mode = 1 << iota
	ModeRead
	ModeLink
	ModePart
	ModeBlock
	ModePage
	ModeAppend
)

// ModeNames are the bit names, lowest bit first, as the protocol spells them.
var ModeNames = []string{"dir", "read", "link", "part", "block", "page", "append"}

// Object is what operations return. Handle is opaque to the harness: it comes back as it was sent.
type Object struct {
	Path         string
	Mode         Mode
	Size         *int64
	AppendOffset *int64
	Etag         *string
	ContentType  *string
	System       map[string]any
	Handle       any
}

// Capabilities is what a service declares: operations, pairs per operation, limits, features.
type Capabilities struct {
	Operations []string
	Pairs      map[string][]string
	Limits     map[string]int64
	Features   []string
}

// Storager is the basic storage of go-storage.
type Storager interface {
	Write(path string, data []byte, pairs Pairs) (*Object, error)
	Read(path string, pairs Pairs) ([]byte, error)
	Stat(path string, pairs Pairs) (*Object, error)
	Delete(path string, pairs Pairs) error
	List(prefix string, pairs Pairs) ([]*Object, error)
}

// Appender is go-storage's append: create, write in order, commit.
type Appender interface {
	CreateAppend(path string, pairs Pairs) (*Object, error)
	WriteAppend(o *Object, data []byte, pairs Pairs) (int64, error)
	CommitAppend(o *Object, pairs Pairs) error
}

// Service is what the protocol loop drives: a name, a declaration, and the operations it declares.
// An operation it does not declare may return NotImplemented (the loop also answers that for an
// Appender the service is not).
type Service interface {
	Name() string
	Capabilities() Capabilities
	Storager
}

// Error is a failure of the taxonomy (GSP-47, GSP-127): Class is one of the harness's error class
// names (ObjectNotExist, PairUnsupported, ...). Any other error a service returns reaches the
// harness as an untyped error, which fails the specs: wrap your SDK's errors in these.
type Error struct {
	Class      string
	Message    string
	Op         string
	Path       *string // nil for operations on an Object (write_append, commit_append)
	Attributes map[string]any
	RetryAfter *float64
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s: %s", e.Class, e.Op, e.Message) }

// Fail builds an Error; path is "" for operations on an Object.
func Fail(class, op, path, message string) *Error {
	e := &Error{Class: class, Message: message, Op: op}
	if path != "" {
		e.Path = &path
	}
	return e
}

// With sets an attribute (pair for PairUnsupported, keys for PairRequired, expected and actual for
// ObjectModeInvalid) and returns the error.
func (e *Error) With(name string, value any) *Error {
	if e.Attributes == nil {
		e.Attributes = map[string]any{}
	}
	e.Attributes[name] = value
	return e
}

// Names is a mode as its bit names.
func (m Mode) Names() []string {
	names := []string{}
	for i, name := range ModeNames {
		if m&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	return names
}
