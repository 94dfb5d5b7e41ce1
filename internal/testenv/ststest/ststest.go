// Package ststest is a small AWS STS endpoint for tests: it serves AssumeRole
// (Query protocol, XML responses as STS returns them) for the roles it is
// given and refuses every other role with AccessDenied, as STS does for a role
// the caller may not assume.
//
// The credentials it issues carry the role's 12-digit account id as their
// access key id, so kinesis-mock, which files a request under the account
// named by its access key id, puts the calls made with them in the role's
// account. Point AWS_ENDPOINT_URL_STS at Server.URL.
package ststest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Role is a role the server lets callers assume.
type Role struct {
	// ARN is the role's ARN, arn:aws:iam::<account>:role/<name>.
	ARN string
	// ExternalID, when set, must be sent as ExternalId (else AccessDenied).
	ExternalID string
	// Lifetime of the credentials issued; default one hour. STS never issues
	// less than 15 minutes, but a short one tests refreshing.
	Lifetime time.Duration
	// Throttle makes every AssumeRole of this role fail with Throttling.
	Throttle bool
}

// Call is one AssumeRole request the server received.
type Call struct {
	RoleARN         string
	SessionName     string
	ExternalID      string // "" when absent
	DurationSeconds int    // 0 when absent
	// CallerKeyID is the access key id the request was signed with.
	CallerKeyID string
	// Granted is false when the server refused the call.
	Granted bool
	// AccessKeyID and Expiration of the credentials issued, when Granted.
	AccessKeyID string
	Expiration  time.Time
	At          time.Time
}

// Server is a running fake STS.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL string

	srv   *httptest.Server
	mu    sync.Mutex
	roles map[string]Role
	calls []Call
}

// New starts a server that knows roles and stops it when the test ends.
func New(t testing.TB, roles ...Role) *Server {
	t.Helper()
	s := &Server{roles: map[string]Role{}}
	for _, r := range roles {
		s.roles[r.ARN] = r
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// SetRole adds or replaces a role.
func (s *Server) SetRole(r Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[r.ARN] = r
}

// Calls returns the AssumeRole requests received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Granted returns the calls that issued credentials.
func (s *Server) Granted() []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Granted {
			out = append(out, c)
		}
	}
	return out
}

var (
	roleARNRE     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::([0-9]{12}):role/[\x21-\x7e]+$`)
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	// Credential=AKID/20240501/us-east-1/sts/aws4_request
	credentialRE = regexp.MustCompile(`Credential=([^/,\s]+)/[0-9]{8}/[a-z0-9-]+/sts/aws4_request`)
)

const xmlns = "https://sts.amazonaws.com/doc/2011-06-15/"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	reqID := newID(8) + "-" + newID(4) + "-" + newID(4) + "-" + newID(4) + "-" + newID(12)
	w.Header().Set("x-amzn-RequestId", reqID)
	if r.Method != http.MethodPost {
		writeError(w, http.StatusBadRequest, reqID, "Sender", "InvalidAction", "STS takes POST requests")
		return
	}
	auth := r.Header.Get("Authorization")
	m := credentialRE.FindStringSubmatch(auth)
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || m == nil || !strings.Contains(auth, "Signature=") {
		writeError(w, http.StatusForbidden, reqID, "Sender", "MissingAuthenticationToken", "Request is missing a SigV4 Authentication Token for service sts")
		return
	}
	caller := m[1]
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, reqID, "Sender", "MalformedInput", err.Error())
		return
	}
	f := r.PostForm
	if a := f.Get("Action"); a != "AssumeRole" {
		writeError(w, http.StatusBadRequest, reqID, "Sender", "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", a, f.Get("Version")))
		return
	}
	if v := f.Get("Version"); v != "2011-06-15" {
		writeError(w, http.StatusBadRequest, reqID, "Sender", "InvalidAction", fmt.Sprintf("Could not find operation AssumeRole for version %s", v))
		return
	}
	call := Call{
		RoleARN:     f.Get("RoleArn"),
		SessionName: f.Get("RoleSessionName"),
		ExternalID:  f.Get("ExternalId"),
		CallerKeyID: caller,
		At:          time.Now(),
	}
	call.DurationSeconds, _ = strconv.Atoi(f.Get("DurationSeconds"))
	code, status, msg := s.check(call, f)
	if code != "" {
		s.record(call)
		writeError(w, status, reqID, "Sender", code, msg)
		return
	}

	s.mu.Lock()
	role := s.roles[call.RoleARN]
	s.mu.Unlock()
	account := roleARNRE.FindStringSubmatch(call.RoleARN)[1]
	life := role.Lifetime
	if life == 0 {
		life = time.Hour
		if call.DurationSeconds > 0 {
			life = time.Duration(call.DurationSeconds) * time.Second
		}
	}
	call.Granted = true
	call.AccessKeyID = account
	call.Expiration = time.Now().Add(life).UTC().Truncate(time.Millisecond)
	s.record(call)

	roleName := call.RoleARN[strings.LastIndexByte(call.RoleARN, '/')+1:]
	roleID := "AROA" + strings.ToUpper(newID(8))
	resp := assumeRoleResponse{Xmlns: xmlns}
	resp.Result.AssumedRoleUser.Arn = fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, roleName, call.SessionName)
	resp.Result.AssumedRoleUser.AssumedRoleID = roleID + ":" + call.SessionName
	resp.Result.Credentials = credentials{
		AccessKeyID:     account,
		SecretAccessKey: newID(20),
		SessionToken:    "FwoGZXIvYXdzE" + newID(40),
		Expiration:      call.Expiration.Format("2006-01-02T15:04:05.000Z"),
	}
	resp.Result.PackedPolicySize = 0
	resp.Metadata.RequestID = reqID
	writeXML(w, http.StatusOK, resp)
}

// check returns the error STS would give, or "".
func (s *Server) check(c Call, f url.Values) (code string, status int, msg string) {
	if c.RoleARN == "" {
		return "MissingParameter", 400, "The request must contain the parameter RoleArn"
	}
	if !roleARNRE.MatchString(c.RoleARN) {
		return "ValidationError", 400, fmt.Sprintf("%s is invalid: RoleArn must be an IAM role ARN", c.RoleARN)
	}
	if c.SessionName == "" {
		return "MissingParameter", 400, "The request must contain the parameter RoleSessionName"
	}
	if !sessionNameRE.MatchString(c.SessionName) {
		return "ValidationError", 400, fmt.Sprintf("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", c.SessionName)
	}
	if d := f.Get("DurationSeconds"); d != "" && (c.DurationSeconds < 900 || c.DurationSeconds > 43200) {
		return "ValidationError", 400, fmt.Sprintf("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", d)
	}
	s.mu.Lock()
	role, ok := s.roles[c.RoleARN]
	s.mu.Unlock()
	denied := fmt.Sprintf("User: arn:aws:iam::%s:user/kinesis-ingest is not authorized to perform: sts:AssumeRole on resource: %s", callerAccount(c.CallerKeyID), c.RoleARN)
	switch {
	case !ok:
		return "AccessDenied", 403, denied
	case role.Throttle:
		return "Throttling", 400, "Rate exceeded"
	case role.ExternalID != "" && c.ExternalID != role.ExternalID:
		return "AccessDenied", 403, denied
	}
	return "", 0, ""
}

func callerAccount(keyID string) string {
	if len(keyID) == 12 && strings.Trim(keyID, "0123456789") == "" {
		return keyID
	}
	return "000000000000"
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

type credentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"AssumeRoleResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		AssumedRoleUser struct {
			AssumedRoleID string `xml:"AssumedRoleId"`
			Arn           string `xml:"Arn"`
		} `xml:"AssumedRoleUser"`
		Credentials      credentials `xml:"Credentials"`
		PackedPolicySize int         `xml:"PackedPolicySize"`
	} `xml:"AssumeRoleResult"`
	Metadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func writeError(w http.ResponseWriter, status int, reqID, kind, code, msg string) {
	e := errorResponse{Xmlns: xmlns, RequestID: reqID}
	e.Error.Type, e.Error.Code, e.Error.Message = kind, code, msg
	writeXML(w, status, e)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
