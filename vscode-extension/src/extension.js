// Starts the lmlang language server (`<python> -m lmlang.lsp`, or a command from the settings) for .lmq/.lmql
// files. Without a Python that has lmlang, the extension still colours queries and says how to get the rest.
'use strict';

const vscode = require('vscode');
const { execFile } = require('child_process');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

const PROBE_TIMEOUT_MS = 20000;

let client;
let output;

function settings() {
  return vscode.workspace.getConfiguration('lmlang');
}

// Whether `python` can import the server; resolves to false for a missing executable as well.
function hasLmlang(python) {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import lmlang.lsp, pygls'], { timeout: PROBE_TIMEOUT_MS }, (error) => resolve(!error));
  });
}

function pythonCandidates() {
  const configured = settings().get('pythonPath');
  if (configured) {
    return [configured];
  }
  const fromPythonExtension = vscode.workspace.getConfiguration('python').get('defaultInterpreterPath');
  const names = process.platform === 'win32' ? ['python', 'py'] : ['python3', 'python'];
  return [fromPythonExtension, ...names].filter((p, i, all) => p && all.indexOf(p) === i);
}

// The command that starts the server, or undefined with the interpreters that were tried.
async function serverCommand() {
  const command = settings().get('serverCommand') || [];
  if (command.length > 0) {
    return { command: command[0], args: command.slice(1) };
  }
  const tried = pythonCandidates();
  for (const python of tried) {
    if (await hasLmlang(python)) {
      return { command: python, args: ['-m', 'lmlang.lsp'] };
    }
  }
  return { tried };
}

async function start() {
  const found = await serverCommand();
  if (!found.command) {
    const message =
      `lmlang: no Python with the lmlang package was found (tried ${found.tried.join(', ')}). ` +
      'Syntax colouring works; for diagnostics, hover and completion set "lmlang.pythonPath" ' +
      'to a Python where `pip install lmlang` was run.';
    output.appendLine(message);
    vscode.window.showWarningMessage(message, 'Open Settings').then((choice) => {
      if (choice) {
        vscode.commands.executeCommand('workbench.action.openSettings', 'lmlang.');
      }
    });
    return;
  }
  output.appendLine(`lmlang: starting ${found.command} ${found.args.join(' ')}`);
  const serverOptions = { command: found.command, args: found.args, transport: TransportKind.stdio };
  const clientOptions = {
    documentSelector: [{ language: 'lmlang' }],
    outputChannel: output,
  };
  client = new LanguageClient('lmlang', 'lmlang language server', serverOptions, clientOptions);
  try {
    await client.start();
  } catch (error) {
    vscode.window.showErrorMessage(`lmlang: the language server did not start: ${error.message || error}`);
    client = undefined;
  }
}

async function stop() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

async function restart() {
  await stop();
  await start();
}

async function activate(context) {
  output = vscode.window.createOutputChannel('lmlang');
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand('lmlang.restartServer', restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('lmlang')) {
        restart();
      }
    }),
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
