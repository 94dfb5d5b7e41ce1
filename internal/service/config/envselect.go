package config

import (
	"fmt"
	"slices"
	"strings"
)

// Envs returns the env names that sources and datasets list, sorted.
func (c *Config) Envs() []string {
	var out []string
	add := func(envs []string) {
		for _, e := range envs {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	for _, s := range c.Sources {
		add(s.Env)
	}
	for _, d := range c.Datasets {
		add(d.Env)
	}
	slices.Sort(out)
	return out
}

// SelectEnv keeps the sources and datasets a deployment named env uses: those
// that list env, and those that list no env at all. With env empty it checks
// only that the config lists no env (a config that does must be run with one:
// running every binding of every env at once is never what was meant).
//
// A dataset reads those of its sources that are selected, and one without
// env goes wherever one of its sources goes. It is an error to name an env
// that nothing lists (a typo would otherwise select only the env-less
// parts), to list env in a dataset none of whose sources does, and to
// select no dataset. Sources no selected dataset reads, and
// sinks none writes to, are dropped. Lease table names do not change (Consumer.TablePerSource is kept).
func (c *Config) SelectEnv(env string) error {
	envs := c.Envs()
	if env == "" {
		if len(envs) > 0 {
			return fmt.Errorf("the config lists envs (%s): choose the deployment's with --env NAME", strings.Join(envs, ", "))
		}
		return nil
	}
	if !slices.Contains(envs, env) {
		if len(envs) == 0 {
			return fmt.Errorf("--env %s: no source or dataset of the config lists an env; add env: [%s] to what this deployment uses, or drop --env", env, env)
		}
		return fmt.Errorf("--env %s: no source or dataset lists it; the config's envs are %s", env, strings.Join(envs, ", "))
	}
	in := func(list []string) bool { return len(list) == 0 || slices.Contains(list, env) }
	var sources []Source
	for _, s := range c.Sources {
		if in(s.Env) {
			sources = append(sources, s)
		}
	}
	var datasets []Dataset
	read := map[string]bool{}
	var errs []string
	for _, d := range c.Datasets {
		if !in(d.Env) {
			continue
		}
		// Like Fennel's stacked @source decorators with env, the dataset
		// reads those of its sources that env selects; the rest are dropped
		// from it, so that nothing downstream looks up a source not run.
		var active []string
		for _, name := range d.Sources {
			if slices.ContainsFunc(sources, func(s Source) bool { return s.Name == name }) {
				active = append(active, name)
			}
		}
		if len(active) == 0 {
			if len(d.Env) == 0 {
				continue // everywhere its sources are
			}
			if len(d.Sources) == 1 {
				errs = append(errs, fmt.Sprintf("dataset %q is in env %s but its source %q is not (its env is %s); add %s to the source's env or take it out of the dataset's", d.Name, env, d.Sources[0], strings.Join(c.Source(d.Sources[0]).Env, ", "), env))
			} else {
				errs = append(errs, fmt.Sprintf("dataset %q is in env %s but none of its sources is (%s); add %s to a source's env or take it out of the dataset's", d.Name, env, c.sourceEnvs(d.Sources), env))
			}
			continue
		}
		d.Sources = active
		datasets = append(datasets, d)
		for _, name := range active {
			read[name] = true
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("--env %s: %s", env, strings.Join(errs, "; "))
	}
	if len(datasets) == 0 {
		return fmt.Errorf("--env %s selects no dataset; list %s in a dataset's env (or leave a dataset's env out to use it everywhere)", env, env)
	}
	c.Sources = slices.DeleteFunc(sources, func(s Source) bool { return !read[s.Name] })
	c.Datasets = datasets
	// A sink only another env's datasets write to is neither opened nor
	// checked: it may not even be reachable from this deployment.
	c.Sinks = slices.DeleteFunc(c.Sinks, func(s Sink) bool {
		return !slices.ContainsFunc(datasets, func(d Dataset) bool { return d.Sink == s.Name })
	})
	return nil
}

// sourceEnvs says, for an error, which envs each of the named sources is in.
func (c *Config) sourceEnvs(names []string) string {
	var parts []string
	for _, name := range names {
		envs := "every env"
		if s := c.Source(name); s != nil && len(s.Env) > 0 {
			envs = strings.Join(s.Env, ", ")
		}
		parts = append(parts, fmt.Sprintf("source %q is in %s", name, envs))
	}
	return strings.Join(parts, "; ")
}
