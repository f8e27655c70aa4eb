//! A 300 MB layer, generated on the fly, through write and read: the
//! process's peak RSS must not grow by anything near the layer's size.
//! (Its own test binary, so no other test shares the process's VmHWM.)

use std::io::{self, Read, Seek, SeekFrom};

use strata_oci::media_types;
use strata_oci::{
    read_archive, write_docker_archive, write_oci_archive, BlobSource, Descriptor, Digest,
    DigestWriter, Error, ImageConfig, ImageManifest, ImageToSave, Raw, Reference,
};
use strata_test_support::oci::DropSink;

const LAYER_SIZE: u64 = 300 << 20;

/// Deterministic bytes, never all in memory.
struct Generator {
    left: u64,
    block: Vec<u8>,
    pos: usize,
}

impl Generator {
    fn new() -> Generator {
        let mut x: u32 = 0x1234_5678;
        let block = (0..65_536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        Generator {
            left: LAYER_SIZE,
            block,
            pos: 0,
        }
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        let n = n.min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % self.block.len();
        self.left -= n as u64;
        Ok(n)
    }
}

struct Source {
    layer: Digest,
    small: Vec<(Digest, Vec<u8>)>,
}

impl BlobSource for Source {
    fn open_blob(&self, digest: &Digest) -> Result<(Box<dyn Read + '_>, u64), Error> {
        if *digest == self.layer {
            return Ok((Box::new(Generator::new()), LAYER_SIZE));
        }
        let (_, b) = self
            .small
            .iter()
            .find(|(d, _)| d == digest)
            .ok_or_else(|| Error::external("source", "no such blob"))?;
        Ok((Box::new(&b[..]), b.len() as u64))
    }
}

fn vm_hwm_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
fn a_300_mb_layer_streams_through() {
    let mut w = DigestWriter::new(io::sink());
    io::copy(&mut Generator::new(), &mut w).unwrap();
    let (_, layer_digest, n) = w.finish();
    assert_eq!(n, LAYER_SIZE);

    let mut config = ImageConfig::new_scratch();
    config.push_layer(layer_digest.clone(), "ADD big /", None);
    let config = Raw::from_value(config);
    let manifest = Raw::from_value(ImageManifest::oci(
        Descriptor::new(
            media_types::OCI_CONFIG,
            config.digest().clone(),
            config.size(),
        ),
        vec![Descriptor::new(
            media_types::OCI_LAYER_TAR,
            layer_digest.clone(),
            LAYER_SIZE,
        )],
    ));
    let image =
        ImageToSave::new(&manifest, &config, vec![Reference::parse("big:1").unwrap()]).unwrap();
    let source = Source {
        layer: layer_digest.clone(),
        small: vec![
            (config.digest().clone(), config.bytes().to_vec()),
            (manifest.digest().clone(), manifest.bytes().to_vec()),
        ],
    };

    let before = vm_hwm_kb();
    for docker in [false, true] {
        let mut file = tempfile::tempfile().unwrap();
        if docker {
            write_docker_archive(&mut file, std::slice::from_ref(&image), &source).unwrap();
        } else {
            write_oci_archive(&mut file, std::slice::from_ref(&image), &source).unwrap();
        }
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut sink = DropSink::default();
        let got = read_archive(io::BufReader::new(file), &mut sink).unwrap();
        assert_eq!(got.images.len(), 1);
        assert_eq!(got.images[0].layers[0].digest, layer_digest);
        assert!(sink.seen.contains(&(layer_digest.clone(), LAYER_SIZE)));
    }
    let after = vm_hwm_kb();
    let growth_mb = (after.saturating_sub(before)) / 1024;
    eprintln!("VmHWM before {before} kB, after {after} kB, growth {growth_mb} MB");
    assert!(
        growth_mb < 100,
        "peak RSS grew by {growth_mb} MB streaming a 300 MB layer"
    );
}
