use super::*;

fn ignore(lines: &str) -> Ignore {
    Ignore::parse(lines, ".dockerignore").unwrap()
}

/// (pattern, path, excluded): moby/patternmatcher's TestMatches cases
/// (each path also excluded when a parent directory matches).
const SINGLE: &[(&str, &str, bool)] = &[
    ("**", "file", true),
    ("**", "dir/file", true),
    ("**/", "dir/file", true),
    ("**/**", "dir/file", true),
    ("dir/**", "dir/file", true),
    ("dir/**", "dir/dir2/file", true),
    ("**/dir", "dir", true),
    ("**/dir", "dir/file", true),
    ("**/dir2/*", "dir/dir2/file", true),
    ("**/dir2/**", "dir/dir2/dir3/file", true),
    ("**file", "file", true),
    ("**file", "dir/file", true),
    ("**/file", "dir/file", true),
    ("**file", "dir/dir/file", true),
    ("**/file*", "dir/dir/file.txt", true),
    ("**/file*txt", "dir/dir/file.txt", true),
    ("**/**/*.txt", "dir/dir/file.txt", true),
    ("**/**/*.txt2", "dir/dir/file.txt", false),
    ("**/*.txt", "file.txt", true),
    ("**/**/*.txt", "file.txt", true),
    ("a**/*.txt", "a/file.txt", true),
    ("a**/*.txt", "a/dir/dir/file.txt", true),
    ("a/*.txt", "a/dir/file.txt", false),
    ("a/*.txt", "a/file.txt", true),
    ("a/*.txt**", "a/file.txt", true),
    ("a[b-d]e", "ae", false),
    ("a[b-d]e", "ace", true),
    ("a[b-d]e", "aae", false),
    ("a[^b-d]e", "aze", true),
    (".*", ".foo", true),
    (".*", "foo", false),
    ("abc.def", "abcdef", false),
    ("abc.def", "abc.def", true),
    ("abc?def", "abcZdef", true),
    ("abc?def", "abcdef", false),
    ("a\\\\", "a\\", true),
    ("**/foo/bar", "foo/bar", true),
    ("**/foo/bar", "dir/dir2/foo/bar", true),
    ("abc/**", "abc", false),
    ("abc/**", "abc/def/ghi", true),
    ("**/.foo", ".foo", true),
    ("**/.foo", "bar.foo", false),
    ("a(b)c/def", "a(b)c/def", true),
    ("a(b)c/def", "a(b)c/xyz", false),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    ("a\\*b", "a*b", true),
    ("*", "fileutils.go", true),
    ("*.go", "fileutils.go", true),
    ("docs", "docs/README.md", true),
    ("/docs/", "docs/README.md", true),
    ("./build/../dist", "dist/x", true),
    ("node_modules", "src/node_modules", false),
];

#[test]
fn single_patterns_as_patternmatcher() {
    for (pattern, path, want) in SINGLE {
        let ig = ignore(pattern);
        assert_eq!(
            ig.excluded(path),
            *want,
            "pattern {pattern:?} path {path:?}"
        );
    }
}

#[test]
fn exceptions_and_last_match_wins() {
    let cases: &[(&str, &str, bool)] = &[
        ("**\n!util/docker/web", "util/docker/web/foo", false),
        (
            "**\n!util/docker/web\nutil/docker/web/foo",
            "util/docker/web/foo",
            true,
        ),
        ("**\n!dist/*.whl", "dist/a-1.whl", false),
        ("!fileutils.go\n*.go", "fileutils.go", true),
        ("*.go\n!fileutils.go", "fileutils.go", false),
        ("docs\n!docs/README.md", "docs/README.md", false),
        ("docs/*\n!docs/README.md", "docs/README.md", false),
        (
            "*.md\n!README*.md\nREADME-secret.md",
            "README-secret.md",
            true,
        ),
        ("*.md\n!README*.md\nREADME-secret.md", "README.md", false),
    ];
    for (lines, path, want) in cases {
        assert_eq!(ignore(lines).excluded(path), *want, "{lines:?} {path:?}");
    }
}

#[test]
fn comments_blanks_and_leading_slash() {
    let ig =
        ignore("\u{feff}# comment\n\n   \n  /secret.txt  \n! keep.txt\n*.txt\n # not a comment\n");
    assert!(ig.excluded("secret.txt"));
    assert!(ig.excluded("a.txt"));
    assert!(ig.excluded(" # not a comment") || ig.excluded("# not a comment"));
    assert!(!ig.excluded("readme.md"));
}

#[test]
fn bad_patterns_are_refused() {
    let err = |p: &str| {
        Ignore::parse(p, "ctx/.dockerignore")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("["),
        "ctx/.dockerignore: bad pattern \"[\": syntax error in pattern"
    );
    assert_eq!(
        err("a[]b"),
        "ctx/.dockerignore: bad pattern \"a[]b\": syntax error in pattern"
    );
    assert_eq!(
        err("a[b-]"),
        "ctx/.dockerignore: bad pattern \"a[b-]\": syntax error in pattern"
    );
    assert_eq!(
        err("a\\"),
        "ctx/.dockerignore: bad pattern \"a\\\\\": syntax error in pattern"
    );
    assert_eq!(
        err("!"),
        "ctx/.dockerignore: illegal exclusion pattern: \"!\""
    );
}

#[test]
fn walks_skip_trees_only_when_no_exception_can_match_below() {
    let ig = ignore("node_modules\n.git\n!.git/HEAD\nbuild/**\n");
    assert_eq!(ig.check("node_modules", true), Verdict::SkipTree);
    assert_eq!(
        ig.check(".git", true),
        Verdict::Exclude,
        "an exception is below"
    );
    assert_eq!(ig.check(".git/HEAD", false), Verdict::Include);
    assert_eq!(ig.check(".git/config", false), Verdict::Exclude);
    assert_eq!(ig.check("build/out", true), Verdict::SkipTree);
    assert_eq!(ig.check("src", true), Verdict::Include);
    assert_eq!(ig.check("node_modules", false), Verdict::Exclude);
    let wild = ignore("vendor\n!**/*.go\n");
    assert_eq!(
        wild.check("vendor", true),
        Verdict::Exclude,
        "a wildcard exception may match anywhere"
    );
}

#[test]
fn parent_matches_carry_down_a_walk() {
    let ig = ignore("a\n!a/keep\n");
    let (v, a) = ig.check_in("a", true, &DirMatch::default());
    assert_eq!(v, Verdict::Exclude);
    let (v, _) = ig.check_in("a/drop", false, &a);
    assert_eq!(v, Verdict::Exclude);
    let (v, keep) = ig.check_in("a/keep", true, &a);
    assert_eq!(v, Verdict::Include);
    let (v, _) = ig.check_in("a/keep/x", false, &keep);
    assert_eq!(
        v,
        Verdict::Include,
        "the exception's match of a/keep carries down too"
    );
    assert!(
        !ig.excluded("a/keep/x"),
        "the same without the parent's matches"
    );
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    std::fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();
    std::fs::create_dir(ctx.join("docker")).unwrap();
    std::fs::write(ctx.join("docker/app.Dockerfile"), "FROM a\n").unwrap();
    std::fs::write(ctx.join("docker/app.Dockerfile.dockerignore"), "*.tmp\n").unwrap();
    let named = Ignore::for_build(ctx, Some(&ctx.join("docker/app.Dockerfile"))).unwrap();
    assert!(named.excluded("x.tmp") && !named.excluded("x.log"));
    let plain = Ignore::for_build(ctx, Some(&ctx.join("Dockerfile"))).unwrap();
    assert!(plain.excluded("x.log") && !plain.excluded("x.tmp"));
    let none = Ignore::for_build(&ctx.join("docker"), None).unwrap();
    assert!(none.is_empty());
}
