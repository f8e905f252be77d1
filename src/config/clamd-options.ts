// Every option name clamd 1.4 accepts in clamd.conf, so onacc can tell "an option clamd knows but onacc
// does not use" (accepted silently) from a misspelling (reported with a suggestion).

// Hint: taken from the clamd-owned entries of common/optparser.c in ClamAV 1.4.5 (the man page omits
// the deprecated names that Debian's generated clamd.conf still writes, e.g. AlgorithmicDetection).
// Names are case-sensitive there, as here.
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
  "DevACDepth", "DevCollectHashes", "DevPerformance", "DevLiblog", "DisableCertCheck", "DetectBrokenExecutables",
  "AlgorithmicDetection", "BlockMax", "PhishingAlwaysBlockSSLMismatch", "PhishingAlwaysBlockCloak",
  "PartitionIntersection", "OLE2BlockMacros", "ArchiveBlockEncrypted", "MailMaxRecursion", "ArchiveMaxScanSize",
  "ArchiveMaxRecursion", "ArchiveMaxFiles", "ArchiveMaxCompressionRatio", "ArchiveBlockMax",
  "ArchiveLimitMemoryUsage", "MailFollowURLs", "AllowSupplementaryGroups", "ScanOnAccess",
]);
