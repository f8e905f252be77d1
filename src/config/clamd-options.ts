// Every option name clamd 1.4 accepts in clamd.conf, so that a line clamd would refuse (a typo of any
// option, binary garbage) is refused by onacc too, instead of being accepted while clamd fails to start.

/** Where clamd looks when started without -c (CONST_CONFDIR_CLAMD of Debian's and upstream's builds). */
export const CLAMD_DEFAULT_CONFIG = "/etc/clamav/clamd.conf";

// Hint: the clamd-owned entries of common/optparser.c (ClamAV 1.4.5; 1.4.6 accepts the same, see
// tests/config/clamd-options.test.ts). Case-sensitive, as in clamd (strcmp). Deprecated names are
// accepted and ignored by clamd (Debian's generated clamd.conf still writes AlgorithmicDetection);
// DevCollectHashes exists only in builds with HAVE__INTERNAL__SHA_COLLECT, so clamd here refuses it.
export const CLAMD_OPTION_NAMES: ReadonlySet<string> = new Set([
  "AlertExceedsMax", "CacheSize", "PreludeEnable", "PreludeAnalyzerName", "LogFile", "LogFileUnlock",
  "LogFileMaxSize", "LogTime", "LogClean", "LogSyslog", "LogFacility", "LogVerbose", "LogRotate",
  "ExtendedDetectionInfo", "PidFile", "TemporaryDirectory", "DatabaseDirectory", "OfficialDatabaseOnly",
  "FailIfCvdOlderThan", "LocalSocket", "LocalSocketGroup", "LocalSocketMode", "FixStaleSocket", "TCPSocket",
  "TCPAddr", "MaxConnectionQueueLength", "StreamMaxLength", "StreamMinPort", "StreamMaxPort", "MaxThreads",
  "ReadTimeout", "CommandReadTimeout", "SendBufTimeout", "MaxQueue", "IdleTimeout", "ExcludePath",
  "MaxDirectoryRecursion", "FollowDirectorySymlinks", "FollowFileSymlinks", "CrossFilesystems", "SelfCheck",
  "ConcurrentDatabaseReload", "DisableCache", "VirusEvent", "ExitOnOOM", "AllowAllMatchScan", "Foreground", "Debug",
  "LeaveTemporaryFiles", "GenerateMetadataJson", "User", "Bytecode", "BytecodeSecurity", "BytecodeTimeout",
  "BytecodeUnsigned", "BytecodeMode", "DetectPUA", "ExcludePUA", "IncludePUA", "ScanPE", "ScanELF", "ScanMail",
  "ScanPartialMessages", "PhishingSignatures", "PhishingScanURLs", "HeuristicAlerts", "HeuristicScanPrecedence",
  "StructuredDataDetection", "StructuredMinCreditCardCount", "StructuredMinSSNCount",
  "StructuredSSNFormatNormal", "StructuredSSNFormatStripped", "ScanHTML", "ScanOLE2", "AlertBrokenExecutables",
  "AlertBrokenMedia", "AlertEncrypted", "StructuredCCOnly", "AlertEncryptedArchive", "AlertEncryptedDoc",
  "AlertOLE2Macros", "AlertPhishingSSLMismatch", "AlertPhishingCloak", "AlertPartitionIntersection", "ScanPDF",
  "ScanSWF", "ScanXMLDOCS", "ScanHWP3", "ScanOneNote", "ScanArchive", "ScanImage", "ScanImageFuzzyHash", "ForceToDisk",
  "MaxScanTime", "MaxScanSize", "MaxFileSize", "MaxRecursion", "MaxFiles", "MaxEmbeddedPE", "MaxHTMLNormalize",
  "MaxHTMLNoTags", "MaxScriptNormalize", "MaxZipTypeRcg", "MaxPartitions", "MaxIconsPE", "MaxRecHWP3",
  "PCREMatchLimit", "PCRERecMatchLimit", "PCREMaxFileSize", "OnAccessMountPath", "OnAccessIncludePath",
  "OnAccessExcludePath", "OnAccessExcludeRootUID", "OnAccessExcludeUID", "OnAccessExcludeUname",
  "OnAccessMaxFileSize", "OnAccessDisableDDD", "OnAccessPrevention", "OnAccessExtraScanning",
  "OnAccessCurlTimeout", "OnAccessMaxThreads", "OnAccessRetryAttempts", "OnAccessDenyOnError", "DevACOnly",
  "DevACDepth", "DevPerformance", "DevLiblog", "DisableCertCheck", "DetectBrokenExecutables",
  "AlgorithmicDetection", "BlockMax", "PhishingAlwaysBlockSSLMismatch", "PhishingAlwaysBlockCloak",
  "PartitionIntersection", "OLE2BlockMacros", "ArchiveBlockEncrypted", "MailMaxRecursion", "ArchiveMaxScanSize",
  "ArchiveMaxRecursion", "ArchiveMaxFiles", "ArchiveMaxCompressionRatio", "ArchiveBlockMax",
  "ArchiveLimitMemoryUsage", "MailFollowURLs", "AllowSupplementaryGroups", "ScanOnAccess",
]);

// Hint: clamd's file parser looks names up by an option's file name OR its command-line name, so
// `tempdir /x` in clamd.conf sets TemporaryDirectory and `foreground yes` is accepted. Command-line name →
// the option it sets (itself for the five that exist only on the command line). Linux build: the Windows
// service flags (install-service, daemon, …) are not compiled in.
export const CLAMD_COMMAND_LINE_NAMES: ReadonlyMap<string, string> = new Map([
  ["help", "help"], ["config-file", "config-file"], ["version", "version"], ["debug", "debug"],
  ["gen-json", "gen-json"], ["alert-exceeds-max", "AlertExceedsMax"], ["cache-size", "CacheSize"],
  ["prelude-enable", "PreludeEnable"], ["prelude-analyzer-name", "PreludeAnalyzerName"], ["log", "LogFile"],
  ["log-rotate", "LogRotate"], ["pid", "PidFile"], ["tempdir", "TemporaryDirectory"],
  ["datadir", "DatabaseDirectory"], ["official-db-only", "OfficialDatabaseOnly"],
  ["fail-if-cvd-older-than", "FailIfCvdOlderThan"], ["max-dir-recursion", "MaxDirectoryRecursion"],
  ["cross-fs", "CrossFilesystems"], ["disable-cache", "DisableCache"], ["foreground", "Foreground"],
  ["bytecode", "Bytecode"], ["bytecode-timeout", "BytecodeTimeout"], ["bytecode-unsigned", "BytecodeUnsigned"],
  ["bytecode-mode", "BytecodeMode"], ["detect-pua", "DetectPUA"], ["exclude-pua", "ExcludePUA"],
  ["include-pua", "IncludePUA"], ["scan-pe", "ScanPE"], ["scan-elf", "ScanELF"], ["scan-mail", "ScanMail"],
  ["phishing-sigs", "PhishingSignatures"], ["phishing-scan-urls", "PhishingScanURLs"],
  ["heuristic-alerts", "HeuristicAlerts"], ["heuristic-scan-precedence", "HeuristicScanPrecedence"],
  ["detect-structured", "StructuredDataDetection"], ["structured-cc-count", "StructuredMinCreditCardCount"],
  ["structured-ssn-count", "StructuredMinSSNCount"], ["scan-html", "ScanHTML"], ["scan-ole2", "ScanOLE2"],
  ["alert-broken", "AlertBrokenExecutables"], ["alert-broken-media", "AlertBrokenMedia"],
  ["alert-encrypted", "AlertEncrypted"], ["structured-cc-mode", "StructuredCCOnly"],
  ["alert-encrypted-archive", "AlertEncryptedArchive"], ["alert-encrypted-doc", "AlertEncryptedDoc"],
  ["alert-macros", "AlertOLE2Macros"], ["alert-phishing-ssl", "AlertPhishingSSLMismatch"],
  ["alert-phishing-cloak", "AlertPhishingCloak"], ["alert-partition-intersection", "AlertPartitionIntersection"],
  ["scan-pdf", "ScanPDF"], ["scan-swf", "ScanSWF"], ["scan-xmldocs", "ScanXMLDOCS"], ["scan-hwp3", "ScanHWP3"],
  ["scan-onenote", "ScanOneNote"], ["scan-archive", "ScanArchive"], ["scan-image", "ScanImage"],
  ["scan-image-fuzzy-hash", "ScanImageFuzzyHash"], ["force-to-disk", "ForceToDisk"],
  ["max-scantime", "MaxScanTime"], ["max-scansize", "MaxScanSize"], ["max-filesize", "MaxFileSize"],
  ["max-recursion", "MaxRecursion"], ["max-files", "MaxFiles"], ["max-embeddedpe", "MaxEmbeddedPE"],
  ["max-htmlnormalize", "MaxHTMLNormalize"], ["max-htmlnotags", "MaxHTMLNoTags"],
  ["max-scriptnormalize", "MaxScriptNormalize"], ["max-ziptypercg", "MaxZipTypeRcg"],
  ["max-partitions", "MaxPartitions"], ["max-iconspe", "MaxIconsPE"], ["max-rechwp3", "MaxRecHWP3"],
  ["pcre-match-limit", "PCREMatchLimit"], ["pcre-recmatch-limit", "PCRERecMatchLimit"],
  ["pcre-max-filesize", "PCREMaxFileSize"], ["dev-ac-only", "DevACOnly"], ["dev-ac-depth", "DevACDepth"],
  ["dev-performance", "DevPerformance"], ["dev-liblog", "DevLiblog"], ["nocerts", "DisableCertCheck"],
  ["detect-broken", "DetectBrokenExecutables"], ["algorithmic-detection", "AlgorithmicDetection"],
  ["block-max", "BlockMax"], ["phishing-ssl", "PhishingAlwaysBlockSSLMismatch"],
  ["phishing-cloak", "PhishingAlwaysBlockCloak"], ["partition-intersection", "PartitionIntersection"],
  ["block-macros", "OLE2BlockMacros"], ["block-encrypted", "ArchiveBlockEncrypted"],
  ["mail-follow-urls", "MailFollowURLs"],
]);

/** The clamd option a clamd.conf line name sets (`tempdir` → TemporaryDirectory), or undefined when clamd refuses the name. */
export function clamdOptionOf(name: string): string | undefined {
  return CLAMD_OPTION_NAMES.has(name) ? name : CLAMD_COMMAND_LINE_NAMES.get(name);
}
