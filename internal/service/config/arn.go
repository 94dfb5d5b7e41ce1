package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Partitions accepted in ARNs.
var partitions = map[string]bool{"aws": true, "aws-cn": true, "aws-us-gov": true}

var (
	regionRE     = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]{1,2}$`)
	accountRE    = regexp.MustCompile(`^[0-9]{12}$`)
	streamNameRE = sized(`^[a-zA-Z0-9_.-]{1,128}$`, `^[a-zA-Z0-9_.-]+$`, 1, 128)
	roleNameRE   = sized(`^[\w+=,.@-]{1,64}$`, `^[\w+=,.@-]+$`, 1, 64)
	rolePathRE   = regexp.MustCompile(`^/([\x21-\x7e]*/)?$`)
)

const (
	streamARNForm = "arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>"
	roleARNForm   = "arn:<partition>:iam::<12-digit account>:role/[<path>/]<name>"
)

// StreamARN is a parsed Kinesis data stream ARN,
// arn:<partition>:kinesis:<region>:<account>:stream/<name>.
type StreamARN struct {
	Partition string // aws, aws-cn or aws-us-gov
	Region    string // e.g. us-east-1
	Account   string // 12 digits
	Name      string // stream name
}

// String returns the ARN in its canonical text form.
func (a StreamARN) String() string {
	if a == (StreamARN{}) {
		return ""
	}
	return "arn:" + a.Partition + ":kinesis:" + a.Region + ":" + a.Account + ":stream/" + a.Name
}

// ParseStreamARN parses a Kinesis data stream ARN. The error quotes s and says
// which part is wrong.
func ParseStreamARN(s string) (StreamARN, error) {
	bad := func(format string, args ...any) (StreamARN, error) {
		return StreamARN{}, fmt.Errorf("not a Kinesis stream ARN: %q: %s", s, fmt.Sprintf(format, args...))
	}
	if !strings.HasPrefix(s, "arn:") {
		return bad("must start with \"arn:\"; want %s", streamARNForm)
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) < 6 {
		return bad("too few parts; want %s", streamARNForm)
	}
	a := StreamARN{Partition: parts[1], Region: parts[3], Account: parts[4]}
	if parts[2] != "kinesis" {
		return bad("service is %q, want kinesis (%s)", parts[2], streamARNForm)
	}
	if err := checkPartition(a.Partition); err != "" {
		return bad("%s", err)
	}
	if err := checkRegion(a.Partition, a.Region); err != "" {
		return bad("%s", err)
	}
	if !accountRE.MatchString(a.Account) {
		return bad("account %q must be exactly 12 digits", a.Account)
	}
	res := parts[5]
	name, ok := strings.CutPrefix(res, "stream/")
	if !ok {
		return bad("resource %q must be stream/<name>", res)
	}
	if i := strings.Index(name, "/consumer/"); i >= 0 {
		return bad("this is a stream consumer ARN; use the stream's ARN, which ends at stream/%s", name[:i])
	}
	if !streamNameRE.MatchString(name) {
		return bad("stream name %q must be 1 to 128 characters of a-z, A-Z, 0-9, _ . -", name)
	}
	a.Name = name
	return a, nil
}

// RoleARN is a parsed IAM role ARN, arn:<partition>:iam::<account>:role/<path><name>.
type RoleARN struct {
	Partition string // aws, aws-cn or aws-us-gov
	Account   string // 12 digits
	Path      string // "/" or "/some/path/"
	Name      string // role name without path
}

// String returns the ARN in its canonical text form.
func (a RoleARN) String() string {
	if a == (RoleARN{}) {
		return ""
	}
	p := a.Path
	if p == "" {
		p = "/"
	}
	return "arn:" + a.Partition + ":iam::" + a.Account + ":role" + p + a.Name
}

// ParseRoleARN parses an IAM role ARN; role paths (role/path/name) are allowed.
// The error quotes s and says which part is wrong.
func ParseRoleARN(s string) (RoleARN, error) {
	bad := func(format string, args ...any) (RoleARN, error) {
		return RoleARN{}, fmt.Errorf("not an IAM role ARN: %q: %s", s, fmt.Sprintf(format, args...))
	}
	if !strings.HasPrefix(s, "arn:") {
		return bad("must start with \"arn:\"; want %s", roleARNForm)
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) < 6 {
		return bad("too few parts; want %s", roleARNForm)
	}
	a := RoleARN{Partition: parts[1], Account: parts[4]}
	if parts[2] == "sts" && strings.HasPrefix(parts[5], "assumed-role/") {
		return bad("this is an assumed-role session ARN; use the role's ARN, %s", roleARNForm)
	}
	if parts[2] != "iam" {
		return bad("service is %q, want iam (%s)", parts[2], roleARNForm)
	}
	if err := checkPartition(a.Partition); err != "" {
		return bad("%s", err)
	}
	if parts[3] != "" {
		return bad("IAM ARNs have no region, found %q; want %s", parts[3], roleARNForm)
	}
	if !accountRE.MatchString(a.Account) {
		return bad("account %q must be exactly 12 digits", a.Account)
	}
	res, ok := strings.CutPrefix(parts[5], "role/")
	if !ok {
		return bad("resource %q must be role/<name>", parts[5])
	}
	i := strings.LastIndexByte(res, '/')
	a.Path, a.Name = "/"+res[:i+1], res[i+1:]
	if len(a.Path) > 512 || !rolePathRE.MatchString(a.Path) {
		return bad("role path %q must be printable ASCII without spaces, at most 512 characters", a.Path)
	}
	if !roleNameRE.MatchString(a.Name) {
		return bad("role name %q must be 1 to 64 characters of letters, digits and +=,.@_-", a.Name)
	}
	return a, nil
}

func checkPartition(p string) string {
	if !partitions[p] {
		return fmt.Sprintf("unknown partition %q; want aws, aws-cn or aws-us-gov", p)
	}
	return ""
}

func checkRegion(partition, r string) string {
	if !regionRE.MatchString(r) {
		return fmt.Sprintf("region %q is not a region name like us-east-1", r)
	}
	want := "aws"
	switch {
	case strings.HasPrefix(r, "cn-"):
		want = "aws-cn"
	case strings.HasPrefix(r, "us-gov-"):
		want = "aws-us-gov"
	}
	if want != partition {
		return fmt.Sprintf("region %q belongs to partition %s, not %s", r, want, partition)
	}
	return ""
}

// checkConsumerARN checks an enhanced fan-out consumer ARN,
// arn:<partition>:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<creation epoch>,
// against the stream it must belong to (when that parsed).
func checkConsumerARN(s string, stream StreamARN) error {
	const form = "arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<creation timestamp>"
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesis" {
		return fmt.Errorf("%q is not a Kinesis stream consumer ARN; want %s (aws kinesis list-stream-consumers prints it)", s, form)
	}
	res := strings.Split(parts[5], "/")
	if len(res) != 4 || res[0] != "stream" || res[2] != "consumer" || !strings.Contains(res[3], ":") {
		return fmt.Errorf("%q is not a Kinesis stream consumer ARN; want %s (aws kinesis list-stream-consumers prints it)", s, form)
	}
	name, _, _ := strings.Cut(res[3], ":")
	if !streamNameRE.MatchString(name) {
		return fmt.Errorf("%q: consumer name %q is not valid; Kinesis allows 1 to 128 letters, digits, _, . and -", s, name)
	}
	if stream.Name != "" && (parts[3] != stream.Region || parts[4] != stream.Account || res[1] != stream.Name) {
		return fmt.Errorf("%q is a consumer of stream %s:%s:%s, not of this source's stream %s; a consumer reads only its own stream", s, parts[3], parts[4], res[1], stream)
	}
	return nil
}
