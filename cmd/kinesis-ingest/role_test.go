package main

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/envtest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/ststest"
	"github.com/kinesis-ingest/kinesis-ingest/internal/testenv/testaws"
)

// TestRoleARN reads a stream of another account through an assumed role.
// kinesis-mock files a request under the account named by its access key id;
// the fake STS issues credentials whose key id is the role's account. So the
// stream "orders" of account 111111111111 is reachable only through the role,
// and the worker's own account 000000000000 holds a decoy stream of the same
// name that must not be read.
func TestRoleARN(t *testing.T) {
	const (
		account    = "111111111111"
		role       = "arn:aws:iam::111111111111:role/reader"
		externalID = "ext-42"
	)
	skipIfExternal(t, "it needs a stream named orders in two accounts, and on shared endpoints each test's stream has a name of its own")
	e := newEnv(t, 1) // the decoy: orders in 000000000000
	other := kinesis.NewFromConfig(testaws.Config(e.kin.Endpoint, account))
	arn := envtest.CreateStream(t, other, "orders", 2)
	data, keys, _ := orders(0, 100, false)
	envtest.PutJSON(t, other, "orders", data, keys)
	decoy, decoyKeys, _ := orders(1000, 50, false)
	e.put(decoy, decoyKeys)

	sts := ststest.New(t,
		ststest.Role{ARN: role, ExternalID: externalID},
		ststest.Role{ARN: "arn:aws:iam::222222222222:role/reader"}, // assumable, but not the stream's account
	)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL) // inherited by the processes started below
	good := testConfig{ARN: arn, RoleARN: role, ExternalID: externalID}

	t.Run("validate passes with the role", func(t *testing.T) {
		e.t = t
		r := e.validate(e.writeConfig(good))
		if r.code != 0 {
			t.Fatalf("exit %d, want 0\n%s", r.code, r.out)
		}
		wantLines(t, r, map[string][]string{
			"ok    source orders: role assumable":  {role, "session kinesis-ingest-validator"},
			"ok    source orders: stream exists":   {arn, "ACTIVE"},
			"ok    source orders: shards readable": nil,
		})
	})

	t.Run("validate without the role", func(t *testing.T) {
		e.t = t
		r := e.validate(e.writeConfig(testConfig{ARN: arn}))
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
		}
		wantLines(t, r, map[string][]string{
			"FAIL  source orders: stream exists [wrong_account]": {e.arn, "not stream_arn " + arn, "role in account 111111111111"},
		})
	})

	t.Run("validate with a role STS refuses", func(t *testing.T) {
		e.t = t
		for _, c := range []testConfig{
			{ARN: arn, RoleARN: "arn:aws:iam::333333333333:role/reader"}, // unknown role
			{ARN: arn, RoleARN: role, ExternalID: "wrong-id"},            // wrong external id
			{ARN: arn, RoleARN: role},                                    // no external id
		} {
			r := e.validate(e.writeConfig(c))
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
			}
			wantLines(t, r, map[string][]string{
				"FAIL  source orders: role assumable [access_denied]": {c.RoleARN, "AccessDenied", "not authorized to perform: sts:AssumeRole", "fix: let the worker's principal assume"},
				"skip  source orders: stream exists":                  {"needs source orders: role assumable"},
			})
		}
	})

	t.Run("validate with a role of another account", func(t *testing.T) {
		e.t = t
		r := e.validate(e.writeConfig(testConfig{ARN: arn, RoleARN: "arn:aws:iam::222222222222:role/reader"}))
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
		}
		wantLines(t, r, map[string][]string{
			"ok    source orders: role assumable":                {"222222222222"},
			"FAIL  source orders: stream exists [wrong_account]": {"not in the account of the credentials", "role in account 111111111111"},
		})
	})

	t.Run("run reads through the role", func(t *testing.T) {
		e.t = t
		before := len(sts.Calls())
		w := e.start(e.writeConfig(good.with("trim_horizon")), "role-worker")
		waitFor(t, 60*time.Second, "100 rows from account 111111111111", func() bool { return len(e.rows()) >= 100 })
		if got, want := idsIn(t, e.rowsDir()), idRange(0, 100); !slices.Equal(got, want) {
			t.Errorf("rows have ids %v, want exactly %v (the decoy has 1000..1049)", got, want)
		}
		w.stop(30 * time.Second)
		calls := sts.Calls()[before:]
		if len(calls) == 0 {
			t.Fatal("the worker never called STS")
		}
		for _, c := range calls {
			if !c.Granted || c.RoleARN != role || c.ExternalID != externalID || c.SessionName != "kinesis-ingest-role-worker" || c.CallerKeyID != testaws.Account {
				t.Errorf("AssumeRole call %+v: want role %s, external id %s, session kinesis-ingest-role-worker, signed by %s", c, role, externalID, testaws.Account)
			}
		}
	})
}

func (c testConfig) with(initPosition string) testConfig {
	c.InitPosition = initPosition
	return c
}
