//! NFS files rendered from `inventory.example.toml`: the server's exports, and the
//! clients' fstab block, which leaves foreign lines and comments exactly as they were.

use crate::kit::{example, example_path};
use closetctl_core::concerns::nfs;

#[test]
fn exports_are_limited_to_the_cluster_network() {
    insta::assert_snapshot!("exports", nfs::exports_file(&example()));
}

#[test]
fn without_a_network_exports_name_each_client() {
    let text = std::fs::read_to_string(example_path())
        .unwrap()
        .replace("network = \"100.64.0.0/10\"", "");
    let inv = closetctl_core::inventory::Inventory::parse(&example_path(), &text).unwrap();
    let exports = nfs::exports_file(&inv);
    assert!(
        exports.contains("/home gpu1.closet.example(rw,sync,no_subtree_check,root_squash) gpu2.closet.example(rw,sync,no_subtree_check,root_squash)\n"),
        "{exports}"
    );
    assert!(
        !exports.contains("head.closet.example"),
        "the server does not export to itself"
    );
}

#[test]
fn fstab_block_keeps_foreign_lines_in_place() {
    let fstab = "# /etc/fstab: static file system information.\n#\n# <file system> <mount point>   <type>  <options>       <dump>  <pass>\nUUID=0a1b / ext4 errors=remount-ro 0 1\n\n# a comment the admin wrote\n/dev/sdb1 /scratch xfs defaults,nofail 0 2\n";
    let once = closetctl_core::block::replace(fstab.as_bytes(), &nfs::fstab_block(&example()));
    insta::assert_snapshot!("fstab_with_block", String::from_utf8(once.clone()).unwrap());
    assert!(once.starts_with(fstab.as_bytes()));
    assert_eq!(
        closetctl_core::block::replace(&once, &nfs::fstab_block(&example())),
        once
    );
}
