<?php
// A small ticket-authz client for PHP helpdesks: CheckAccess and
// ListVisibleTickets as Connect JSON calls over PHP's own curl extension,
// no gRPC extension needed. Copy the TicketAuthz class; the lines at the
// bottom are a demo against examples/demo.yaml.
//
//   TICKET_AUTHZ_URL=http://127.0.0.1:50051 [TICKET_AUTHZ_TOKEN=...] php ticket_authz.php

declare(strict_types=1);

/** A refusal from the service: the Connect code and the message naming the field. */
final class TicketAuthzError extends RuntimeException
{
    public function __construct(public readonly string $codeName, string $message, public readonly int $httpStatus)
    {
        parent::__construct("$codeName: $message", $httpStatus);
    }
}

final class TicketAuthz
{
    private const SERVICE = '/ticketauthz.v1.TicketAuthz/';

    /**
     * @param string      $baseUrl e.g. http://127.0.0.1:50051 (https:// with TLS)
     * @param string|null $token   the bearer token when the service has --auth-token-file
     * @param array       $curlOptions extra CURLOPT_* settings (CA file, client certificate)
     */
    public function __construct(
        private readonly string $baseUrl,
        private readonly ?string $token = null,
        private readonly float $timeoutSeconds = 2.0,
        private readonly array $curlOptions = [],
    ) {
    }

    /**
     * May $user do $action on ticket $ticket? $action is an access-model name
     * ("view", "comment", ...). Returns the whole answer: allowed, reason,
     * warning, revision (a string: uint64 travels as a JSON string).
     */
    public function checkAccess(string $user, string $action, string $ticket = '', array $extra = []): array
    {
        return $this->call('CheckAccess', [
            'userId' => $user,
            'action' => 'ACTION_' . strtoupper($action),
            'ticketId' => $ticket,
        ] + $extra);
    }

    /** Every ticket id $user may view, following the page tokens. */
    public function listVisibleTickets(string $user, array $filter = [], int $pageSize = 1000): array
    {
        $ids = [];
        $token = '';
        do {
            $page = $this->call('ListVisibleTickets', [
                'userId' => $user,
                'pageSize' => $pageSize,
                'pageToken' => $token,
            ] + $filter);
            array_push($ids, ...$page['ticketIds']);
            $token = $page['nextPageToken'];
        } while ($token !== '');
        return $ids;
    }

    private function call(string $method, array $request): array
    {
        $headers = [
            'Content-Type: application/json',
            'Connect-Protocol-Version: 1',
            'Connect-Timeout-Ms: ' . (int) ($this->timeoutSeconds * 1000),
        ];
        if ($this->token !== null && $this->token !== '') {
            $headers[] = 'Authorization: Bearer ' . $this->token;
        }
        $curl = curl_init(rtrim($this->baseUrl, '/') . self::SERVICE . $method);
        curl_setopt_array($curl, [
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => json_encode($request, JSON_THROW_ON_ERROR),
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT_MS => (int) ($this->timeoutSeconds * 1000) + 500,
        ] + $this->curlOptions);
        $body = curl_exec($curl);
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        $failure = curl_error($curl);
        curl_close($curl);
        if ($body === false) {
            throw new TicketAuthzError('unavailable', "transport: $failure", 0);
        }
        $answer = json_decode((string) $body, true);
        if ($status !== 200) {
            throw new TicketAuthzError(
                $answer['code'] ?? 'unknown',
                $answer['message'] ?? (string) $body,
                $status,
            );
        }
        return $answer;
    }
}

if (realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    $authz = new TicketAuthz(
        getenv('TICKET_AUTHZ_URL') ?: 'http://127.0.0.1:50051',
        getenv('TICKET_AUTHZ_TOKEN') ?: null,
    );
    try {
        $answer = $authz->checkAccess('nils', 'view', '1001');
        printf("nils may view 1001: %s (%s, revision %s)\n",
            $answer['allowed'] ? 'yes' : 'no', $answer['reason'], $answer['revision']);
        $answer = $authz->checkAccess('nils', 'comment', '1001');
        printf("nils may comment on 1001: %s (%s)\n", $answer['allowed'] ? 'yes' : 'no', $answer['reason']);
        printf("tickets nils may view: %s\n", implode(', ', $authz->listVisibleTickets('nils')));
    } catch (TicketAuthzError $e) {
        printf("error: %s\n", $e->getMessage());
        exit(1);
    }
    try {
        $authz->checkAccess('', 'view', '1001');
    } catch (TicketAuthzError $e) {
        printf("error: %s\n", $e->getMessage());
    }
}
