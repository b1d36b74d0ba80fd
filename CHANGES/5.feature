Pulp REST API for pushed content: container repositories (with their versions), distributions,
namespaces and content (blobs, manifests, tags) under the endpoint names pulp-cli and pulp-glue
know; tag, untag, remove-image and repository delete as tasks that make one repository version
each; access policies that ask the registry's own permission decision.
