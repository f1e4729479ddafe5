// Package regcache keeps slimbuild's build cache in an OCI registry, so that many
// machines (a fleet of CI runners) share one cache: `build --cache-to
// type=registry,ref=REF` exports, `--cache-from type=registry,ref=REF` imports.
//
// # Format
//
// A cache is one OCI image manifest (application/vnd.oci.image.manifest.v1+json)
// stored under REF, with
//
//   - artifactType "application/vnd.slimbuild.cache.v1";
//   - a config blob of media type "application/vnd.slimbuild.cache.config.v1+json"
//     (ConfigMediaType), described below;
//   - as layers, every distinct layer blob a step of the cache produced, each with its
//     own media type (an OCI or docker layer type), size and digest.
//
// The config is JSON:
//
//	{
//	  "version": 1,
//	  "steps": {
//	    "<cache key>": {
//	      "layer": {"digest": "sha256:…", "diffID": "sha256:…", "size": 123,
//	                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"},
//	      "created": "2026-12-02T08:00:00Z"
//	    },
//	    "<cache key of a step that changed nothing>": {"created": "…"}
//	  }
//	}
//
// A cache key is the engine's step key (64 lowercase hex characters: the sha256 of
// the parent's key, the expanded instruction, its environment and, for COPY/ADD, the
// content of what it copies), so a hit means "this step, on this parent, with these
// inputs, produced this layer". diffID is the sha256 of the uncompressed layer tar;
// created is the step's time in the image history. Every layer a step names is one
// of the manifest's layers, with the same digest, size and media type.
//
// # Laziness
//
// Open reads the manifest and the config, nothing else. Blob returns a layer whose
// bytes are fetched only when they are read; the engine reads them only when a
// later step must mount its parent, or when the final image is stored. A step that
// is served from the cache costs no download at all.
//
// # Export
//
// Export pushes the blobs first (those the registry already has are not uploaded
// again; blobs that still live in another repository of the registry are
// cross-mounted), then the config, then the manifest in one PUT. Two exports to the
// same REF at once each leave a complete manifest whose blobs are all present: the
// last writer wins.
//
// # Trust
//
// The cache is untrusted input. Open refuses a config that is too large
// (MaxConfigSize), not valid JSON, of another version, or that names a malformed key,
// digest, size or media type, or a layer that is not in the manifest. A blob is
// checked against its digest as it is downloaded, and its uncompressed content
// against its diffID when it is unpacked. What a cache cannot be checked for is
// whether the layer is what the step would have produced: whoever may push to REF
// decides what cached steps contain, exactly as with an image. Give write access to
// the cache repository only to the runners that build.
//
// The package is silent; errors name the reference they concern.
package regcache
