package images

import (
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
)

// resolvePull is shortnames.Resolve as a daemon without a terminal sees it:
// the pull candidates for name, in order. An alias wins; otherwise a short
// name is tried under each unqualified-search registry, and enforcing mode
// refuses more than one. Nothing is recorded: shortnames records an alias
// only when a user picks one at its terminal prompt.
//
// shortnames.Resolve itself is not linked: its prompt (promptui, through
// text/template) makes the linker keep every exported method of every type,
// about 6 MB of the daemons' executable and of their idle memory
// (docs/performance.md, "Daemon memory").
func resolvePull(sys *types.SystemContext, name string) ([]reference.Named, error) {
	mode, err := sysregistriesv2.GetShortNameMode(sys)
	if err != nil {
		return nil, err
	}
	switch mode {
	case types.ShortNameModeDisabled, types.ShortNameModePermissive, types.ShortNameModeEnforcing:
	default:
		return nil, fmt.Errorf("unsupported short-name mode (%v)", mode)
	}
	ref, err := reference.Parse(name)
	if err != nil {
		return nil, fmt.Errorf("cannot parse input: %q: %w", name, err)
	}
	named, ok := ref.(reference.Named)
	if !ok {
		return nil, fmt.Errorf("%q is not a named reference", name)
	}
	if !shortnames.IsShortName(name) {
		named, err = reference.ParseNormalizedNamed(name)
		if err != nil {
			return nil, fmt.Errorf("cannot normalize input: %q: %w", name, err)
		}
		return []reference.Named{reference.TagNameOnly(named)}, nil
	}
	if sys != nil && sys.PodmanOnlyShortNamesIgnoreRegistriesConfAndForceDockerHub {
		named, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return nil, fmt.Errorf("cannot normalize input: %q: %w", name, err)
		}
		return []reference.Named{reference.TagNameOnly(named)}, nil
	}
	tagged, isTagged := named.(reference.NamedTagged)
	digested, isDigested := named.(reference.Digested)
	alias, _, err := sysregistriesv2.ResolveShortNameAlias(sys, reference.TrimNamed(named).String())
	if err != nil {
		return nil, err
	}
	if alias != nil {
		if isTagged {
			if alias, err = reference.WithTag(alias, tagged.Tag()); err != nil {
				return nil, err
			}
		}
		if isDigested {
			if alias, err = reference.WithDigest(alias, digested.Digest()); err != nil {
				return nil, err
			}
		}
		return []reference.Named{reference.TagNameOnly(alias)}, nil
	}
	regs, origin, err := sysregistriesv2.UnqualifiedSearchRegistriesWithOrigin(sys)
	if err != nil {
		return nil, err
	}
	if len(regs) == 0 {
		if origin != "" {
			return nil, fmt.Errorf("short-name %q did not resolve to an alias and no unqualified-search registries are defined in %q", name, origin)
		}
		return nil, fmt.Errorf("short-name %q did not resolve to an alias and no containers-registries.conf(5) was found", name)
	}
	var out []reference.Named
	for _, reg := range regs {
		n, err := reference.ParseNormalizedNamed(reg + "/" + name)
		if err != nil {
			return nil, fmt.Errorf("creating reference with unqualified-search registry %q: %w", reg, err)
		}
		out = append(out, reference.TagNameOnly(n))
	}
	if len(out) > 1 && mode == types.ShortNameModeEnforcing {
		return nil, errors.New("short-name resolution enforced but cannot prompt without a TTY")
	}
	return out, nil
}

// pullErrors joins the errors of every candidate as shortnames'
// FormatPullErrors does.
func pullErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	anyErrs := make([]any, len(errs))
	for i, e := range errs {
		anyErrs[i] = e
	}
	return fmt.Errorf(fmt.Sprintf("%d errors occurred while pulling:\n * ", len(errs))+"%w"+strings.Repeat("\n * %w", len(errs)-1), anyErrs...)
}
