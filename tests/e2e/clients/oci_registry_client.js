// Push an image (config + one layer + manifest) with the npm client `oci-registry-client`, then
// pull it back by tag: manifest, and every blob by digest. Prints one JSON object on stdout.
//
//   node oci_registry_client.js <registry host:port> <repository> <tag> <username> <password>
//
// TLS trust comes from NODE_EXTRA_CA_CERTS; the client follows the registry's token challenge.
'use strict';

const crypto = require('crypto');
const { Readable } = require('stream');
const { RegistryClientV2 } = require('oci-registry-client');

const [host, repository, tag, username, password] = process.argv.slice(2);

function digestOf(bytes) {
  return 'sha256:' + crypto.createHash('sha256').update(bytes).digest('hex');
}

async function pushBlob(client, bytes) {
  const digest = digestOf(bytes);
  await client.blobUpload({
    digest,
    stream: Readable.from([bytes]),
    contentLength: bytes.length,
    contentType: 'application/octet-stream',
  });
  return digest;
}

async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function main() {
  const name = `${host}/${repository}`;
  const pusher = new RegistryClientV2({ name, username, password, scheme: 'https', scopes: ['pull', 'push'] });
  const layer = crypto.randomBytes(4096);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
  const layerDigest = await pushBlob(pusher, layer);
  const configDigest = await pushBlob(pusher, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: layerDigest,
          size: layer.length,
        },
      ],
    }),
  );
  const pushed = await pusher.putManifest({
    manifestData: manifest,
    ref: tag,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
  });

  const puller = new RegistryClientV2({ name, username, password, scheme: 'https', scopes: ['pull'] });
  const tags = await puller.listTags();
  const { resp, manifest: pulled } = await puller.getManifest({ ref: tag, acceptOCIManifests: true });
  const blobs = {};
  for (const descriptor of [pulled.config, ...pulled.layers]) {
    const { stream } = await puller.createBlobReadStream({ digest: descriptor.digest });
    blobs[descriptor.digest] = digestOf(await readAll(stream));
  }
  process.stdout.write(
    JSON.stringify({
      pushed_digest: pushed.digest,
      manifest_digest: digestOf(manifest),
      pulled_digest: resp.headers.get('docker-content-digest'),
      tags: tags.tags,
      sent: [configDigest, layerDigest],
      blobs,
    }) + '\n',
  );
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
