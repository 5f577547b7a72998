// bundle-push: the images of a teamhub bundle's OCI image layout into one registry, each blob sent once.
//
// crane pushes one image at a time and uploads every blob to every repository that uses it (a layout's
// layers cannot be mounted). This helper, built on the same library (go-containerregistry), sends each blob
// once, to the first repository that needs it, has the registry mount it into every other repository
// (POST .../blobs/uploads/?mount=<digest>&from=<repository>, no bytes sent), then writes every manifest
// byte for byte from the layout, so each digest is kept. Blobs and manifests go several at once (-jobs).
//
// Usage: bundle-push [-insecure] [-jobs N] LAYOUT PLAN.json
// PLAN.json: [{"digest": "sha256:...", "target": "host:port/repo:tag"}, ...]; each target in one registry.
// Prints "pushed <target> <digest>" per image; credentials from the docker config file (DOCKER_CONFIG).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"
)

type item struct {
	Digest string `json:"digest"`
	Target string `json:"target"`
}

type image struct {
	target string // as the plan says it (printed back verbatim)
	ref    name.Reference
	image  v1.Image      // an image, or
	index  v1.ImageIndex // an index
	blobs  map[v1.Hash]v1.Layer
}

func collect(img v1.Image, into map[v1.Hash]v1.Layer) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	config, err := partial.ConfigLayer(img)
	if err != nil {
		return err
	}
	for _, l := range append(layers, config) {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		into[d] = l
	}
	return nil
}

func collectIndex(idx v1.ImageIndex, into map[v1.Hash]v1.Layer) error {
	manifest, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, desc := range manifest.Manifests {
		if desc.MediaType.IsIndex() {
			child, err := idx.ImageIndex(desc.Digest)
			if err != nil {
				return err
			}
			if err := collectIndex(child, into); err != nil {
				return err
			}
		} else {
			child, err := idx.Image(desc.Digest)
			if err != nil {
				return err
			}
			if err := collect(child, into); err != nil {
				return err
			}
		}
	}
	return nil
}

func main() {
	insecure := flag.Bool("insecure", false, "the registry speaks plain HTTP")
	jobs := flag.Int("jobs", 4, "blobs and manifests sent at once")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: bundle-push [-insecure] [-jobs N] LAYOUT PLAN.json")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *insecure, *jobs); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, planPath string, insecure bool, jobs int) error {
	raw, err := os.ReadFile(planPath)
	if err != nil {
		return err
	}
	var plan []item
	if err := json.Unmarshal(raw, &plan); err != nil {
		return fmt.Errorf("%s: %w", planPath, err)
	}
	path, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	root, err := path.ImageIndex() // index.json: every image of the bundle
	if err != nil {
		return err
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	remoteOpts := []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithJobs(jobs)}

	images := make([]*image, 0, len(plan))
	for _, it := range plan {
		ref, err := name.ParseReference(it.Target, opts...)
		if err != nil {
			return err
		}
		h, err := v1.NewHash(it.Digest)
		if err != nil {
			return err
		}
		img := &image{target: it.Target, ref: ref, blobs: map[v1.Hash]v1.Layer{}}
		if isIndex(path, h) {
			if img.index, err = root.ImageIndex(h); err == nil {
				err = collectIndex(img.index, img.blobs)
			}
		} else if img.image, err = root.Image(h); err == nil {
			err = collect(img.image, img.blobs)
		}
		if err != nil {
			return fmt.Errorf("%s (%s): %w", it.Target, it.Digest, err)
		}
		images = append(images, img)
	}

	// Each blob's home: the first repository (in plan order) using it; the others mount it from there.
	home := map[v1.Hash]name.Repository{}
	layers := map[v1.Hash]v1.Layer{}
	mounts := map[name.Repository]map[v1.Hash]bool{}
	for _, img := range images {
		repo := img.ref.Context()
		for d, l := range img.blobs {
			layers[d] = l
			if _, ok := home[d]; !ok {
				home[d] = repo
			} else if home[d] != repo {
				if mounts[repo] == nil {
					mounts[repo] = map[v1.Hash]bool{}
				}
				mounts[repo][d] = true
			}
		}
	}
	digests := make([]v1.Hash, 0, len(home))
	for d := range home {
		digests = append(digests, d)
	}
	sort.Slice(digests, func(i, j int) bool { return digests[i].String() < digests[j].String() })

	// 1. every blob once, into its home (a blob the registry has there already is not sent again)
	g := new(errgroup.Group)
	g.SetLimit(jobs)
	for _, d := range digests {
		d := d
		g.Go(func() error {
			if err := remote.WriteLayer(home[d], layers[d], remoteOpts...); err != nil {
				return fmt.Errorf("blob %s into %s: %w", d, home[d], err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// 2. mounted into every other repository using it
	g = new(errgroup.Group)
	g.SetLimit(jobs)
	for repo, set := range mounts {
		for d := range set {
			repo, d := repo, d
			g.Go(func() error {
				ml := &remote.MountableLayer{Layer: layers[d], Reference: home[d].Digest(d.String())}
				if err := remote.WriteLayer(repo, ml, remoteOpts...); err != nil {
					return fmt.Errorf("blob %s mounted into %s from %s: %w", d, repo, home[d], err)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// 3. the manifests, byte for byte from the layout (every blob is there: only existence checks)
	var out sync.Mutex
	g = new(errgroup.Group)
	g.SetLimit(jobs)
	for _, img := range images {
		img := img
		g.Go(func() error {
			var err error
			var digest v1.Hash
			if img.index != nil {
				err = remote.WriteIndex(img.ref, img.index, remoteOpts...)
				digest, _ = img.index.Digest()
			} else {
				err = remote.Write(img.ref, img.image, remoteOpts...)
				digest, _ = img.image.Digest()
			}
			if err != nil {
				return fmt.Errorf("%s: %w", img.ref, err)
			}
			out.Lock()
			fmt.Printf("pushed %s %s\n", img.target, digest)
			out.Unlock()
			return nil
		})
	}
	return g.Wait()
}

func isIndex(path layout.Path, h v1.Hash) bool {
	raw, err := path.Bytes(h)
	if err != nil {
		return false
	}
	var doc struct {
		Manifests []json.RawMessage `json:"manifests"`
	}
	return json.Unmarshal(raw, &doc) == nil && (doc.Manifests != nil)
}
